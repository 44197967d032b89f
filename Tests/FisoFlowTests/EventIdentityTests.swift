import Foundation
import Testing

@testable import FisoFlow

@Suite struct EventIdentityTests {
    @Test func randomUUIDsAreVersion4InLowercaseAndDistinct() throws {
        var seen = Set<String>()
        // More than one block of random bytes, so refills are exercised.
        for _ in 0..<2_000 {
            let text = RandomUUID.make()
            #expect(text.utf8.count == 36)
            #expect(text == text.lowercased())
            let parsed = try #require(UUID(uuidString: text), "not a UUID: \(text)")
            #expect(parsed.uuidString.lowercased() == text)
            let bytes = withUnsafeBytes(of: parsed.uuid) { Array($0) }
            #expect(bytes[6] >> 4 == 4, "version nibble of \(text)")
            #expect(bytes[8] >> 6 == 0b10, "variant bits of \(text)")
            seen.insert(text)
        }
        #expect(seen.count == 2_000)
    }

    @Test func aNewCorrelationIDIsARandomUUIDWhenTheEventHasNone() {
        let first = CorrelationID.of(EventHeaders())
        let second = CorrelationID.of(EventHeaders())
        #expect(UUID(uuidString: first) != nil)
        #expect(first != second)
    }
}
