-- rfc9329.lua: Wireshark/tshark dissector for TCP encapsulation of IKE and ESP (RFC 9329,
-- which obsoletes RFC 8229), shipped with ikev2-responder.
--
-- Wireshark 4.0's built-in "tcpencap" dissector implements Cisco's older proprietary format
-- and misreads RFC 9329 streams. This one follows RFC 9329 §3-§4:
--   * an optional stream prefix "IKETCP" (0x494b45544350), sent once by the initiator at
--     the start of the stream (inside TLS when TLS is used, RFC 9329 §4 and Appendix);
--   * then records: Length (2 octets, counting itself), followed either by a non-ESP marker
--     (4 zero octets) and an IKE message, or by an ESP packet (its non-zero SPI first).
-- IKE messages go to Wireshark's "isakmp" dissector (so ikev2_decryption_table works),
-- ESP packets to "esp" (so esp_sa decryption works).
--
-- Use:  tshark -X lua_script:rfc9329.lua -r capture.pcap
--       (TCP port 4500 by default; other ports: -o rfc9329.tcp_ports:4500,10443, or
--        -d tcp.port==PORT,rfc9329; over TLS: -o tls.keylog_file:KEYLOG, and port 443 is
--        registered in the tls.port table)
-- Wireshark: copy into the personal Lua plugins folder (Help > About > Folders).

local proto = Proto("rfc9329", "TCP Encapsulation of IKE and ESP (RFC 9329)")

local PREFIX = "IKETCP"

local f_prefix = ProtoField.string("rfc9329.prefix", "Stream prefix")
local f_length = ProtoField.uint16("rfc9329.length", "Length", base.DEC)
local f_marker = ProtoField.uint32("rfc9329.non_esp_marker", "Non-ESP marker", base.HEX)
local f_kind = ProtoField.string("rfc9329.kind", "Record")
proto.fields = { f_prefix, f_length, f_marker, f_kind }

local e_bad_length = ProtoExpert.new("rfc9329.length.invalid", "Length below 2 (RFC 9329 §3: close)",
    expert.group.MALFORMED, expert.severity.ERROR)
local e_short = ProtoExpert.new("rfc9329.record.short", "Record too short to hold a non-ESP marker or SPI",
    expert.group.MALFORMED, expert.severity.WARN)
proto.experts = { e_bad_length, e_short }

proto.prefs.tcp_ports = Pref.range("TCP ports", "4500", "TCP ports carrying RFC 9329 streams", 65535)
proto.prefs.tls_ports = Pref.range("TLS ports", "443", "TLS ports carrying RFC 9329 streams", 65535)

local isakmp = Dissector.get("isakmp")
local esp = Dissector.get("esp")

local registered_tcp = ""
local registered_tls = ""

local function register_ports()
    local tcp_table = DissectorTable.get("tcp.port")
    local tls_table = DissectorTable.get("tls.port")
    if registered_tcp ~= "" then tcp_table:remove(registered_tcp, proto) end
    if registered_tls ~= "" then tls_table:remove(registered_tls, proto) end
    registered_tcp = tostring(proto.prefs.tcp_ports)
    registered_tls = tostring(proto.prefs.tls_ports)
    if registered_tcp ~= "" then tcp_table:add(registered_tcp, proto) end
    if registered_tls ~= "" then tls_table:add(registered_tls, proto) end
end

function proto.prefs_changed()
    register_ports()
end

function proto.dissector(tvb, pinfo, tree)
    local total = tvb:len()
    local offset = 0
    local kinds = {}
    while offset < total do
        local remaining = total - offset
        -- The prefix can only start a stream; records never begin with 0x494b 0x45544350
        -- in practice (that would be an 18763-octet ESP packet with SPI 0x45544350).
        if offset == 0 and remaining >= 1 and tvb(0, 1):uint() == 0x49 then
            if remaining < #PREFIX then
                pinfo.desegment_offset = 0
                pinfo.desegment_len = #PREFIX - remaining
                return total
            end
            if tvb(0, #PREFIX):string() == PREFIX then
                local sub = tree:add(proto, tvb(0, #PREFIX))
                sub:add(f_prefix, tvb(0, #PREFIX))
                sub:append_text(", stream prefix IKETCP")
                kinds[#kinds + 1] = "IKETCP"
                offset = #PREFIX
                goto continue
            end
        end
        if remaining < 2 then
            pinfo.desegment_offset = offset
            pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
            return total
        end
        do
            local length = tvb(offset, 2):uint()
            if length < 2 then
                local sub = tree:add(proto, tvb(offset, 2))
                sub:add(f_length, tvb(offset, 2)):add_proto_expert_info(e_bad_length)
                return total
            end
            if remaining < length then
                pinfo.desegment_offset = offset
                pinfo.desegment_len = length - remaining
                return total
            end
            local sub = tree:add(proto, tvb(offset, length))
            sub:add(f_length, tvb(offset, 2))
            local body_len = length - 2
            if body_len >= 4 and tvb(offset + 2, 4):uint() == 0 then
                sub:add(f_marker, tvb(offset + 2, 4))
                sub:add(f_kind, "IKE"):set_generated()
                sub:append_text(", IKE message, " .. (body_len - 4) .. " octets")
                kinds[#kinds + 1] = "IKE"
                if body_len > 4 then
                    isakmp:call(tvb(offset + 6, body_len - 4):tvb(), pinfo, tree)
                end
            elseif body_len >= 4 then
                sub:add(f_kind, "ESP"):set_generated()
                sub:append_text(", ESP packet, " .. body_len .. " octets")
                kinds[#kinds + 1] = "ESP"
                esp:call(tvb(offset + 2, body_len):tvb(), pinfo, tree)
            else
                sub:add_proto_expert_info(e_short)
            end
            offset = offset + length
        end
        ::continue::
    end
    if #kinds > 0 then
        pinfo.cols.protocol:prepend("RFC9329/")
    end
    return offset
end

register_ports()
