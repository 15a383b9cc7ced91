import Foundation
@testable import SwitchboardHTTP
import Testing

@Suite("API times (RFC 3339)")
struct APITimeTests {
    @Test("Times are written in UTC with milliseconds", arguments: [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (1_795_961_106.789, "2026-11-29T14:05:06.789Z"),
        (-0.001, "1969-12-31T23:59:59.999Z"),
        (951_782_400.05, "2000-02-29T00:00:00.050Z"),
    ])
    func format(seconds: Double, text: String) {
        #expect(APITime.format(Date(timeIntervalSince1970: seconds)) == text)
        #expect(APITime.parse(text).map { abs($0.timeIntervalSince1970 - seconds) < 0.0005 } == true)
    }

    @Test("RFC 3339 date-times are read with any fraction and offset")
    func parse() {
        let base = 1_795_961_106.0
        #expect(APITime.parse("2026-11-29T14:05:06Z")?.timeIntervalSince1970 == base)
        #expect(APITime.parse("2026-11-29t14:05:06z")?.timeIntervalSince1970 == base)
        #expect(APITime.parse("2026-11-29T15:05:06+01:00")?.timeIntervalSince1970 == base)
        #expect(APITime.parse("2026-11-29T09:35:06-04:30")?.timeIntervalSince1970 == base)
        #expect(APITime.parse("2026-11-29T14:05:06.5Z")?.timeIntervalSince1970 == base + 0.5)
        #expect(APITime.parse("2026-11-29T14:05:06.123456789Z").map { abs($0.timeIntervalSince1970 - base - 0.123456789) < 1e-6 } == true)
        #expect(APITime.parse("0205-01-03T17:12:22.0-21:27") != nil, "any year and offset the grammar allows")
    }

    @Test("Anything else is refused", arguments: [
        "", "2026-11-29", "2026-11-29T14:05:06", "2026-11-29 14:05:06Z", "2026-02-30T00:00:00Z",
        "2026-13-01T00:00:00Z", "2026-11-29T24:00:00Z", "2026-11-29T14:60:00Z", "2026-11-29T14:05:06.Z",
        "2026-11-29T14:05:06+0100", "2026-11-29T14:05:06Zjunk", "yesterday", "２０２６-11-29T14:05:06Z",
    ])
    func refuse(text: String) {
        #expect(APITime.parse(text) == nil)
    }
}

@Suite("Callback hosts")
struct CallbackHostTests {
    @Test("Loopback, private, link-local and reserved addresses count as internal", arguments: [
        "127.0.0.1", "10.0.0.1", "172.16.5.4", "172.31.255.255", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "[::1]", "::", "fd00::1", "fe80::1", "::ffff:10.0.0.1",
        "localhost", "LOCALHOST", "api.localhost",
    ])
    func internalHosts(host: String) {
        #expect(CallbackHost.isInternal(host))
    }

    @Test("Public addresses and names do not", arguments: [
        "93.184.216.34", "172.32.0.1", "100.128.0.1", "8.8.8.8", "2001:db8::1", "::ffff:8.8.8.8", "example.org", "localhost.example.org",
    ])
    func publicHosts(host: String) {
        #expect(!CallbackHost.isInternal(host))
    }
}
