/// A point in time with nanosecond precision, between 0001-01-01T00:00:00Z and
/// 9999-12-31T23:59:59.999999999Z (`google.protobuf.Timestamp`).
public struct CELTimestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Seconds since 1970-01-01T00:00:00Z.
    public let seconds: Int64
    /// Nanoseconds within the second, 0 through 999,999,999.
    public let nanos: Int32

    static let minimumSeconds: Int64 = -62_135_596_800  // 0001-01-01T00:00:00Z
    static let maximumSeconds: Int64 = 253_402_300_799  // 9999-12-31T23:59:59Z

    /// A timestamp, or nil when it is outside the supported range or `nanos` is not normalized.
    public init?(seconds: Int64, nanos: Int32 = 0) {
        guard seconds >= Self.minimumSeconds, seconds <= Self.maximumSeconds, nanos >= 0, nanos < 1_000_000_000
        else { return nil }
        self.seconds = seconds
        self.nanos = nanos
    }

    public static func < (lhs: CELTimestamp, rhs: CELTimestamp) -> Bool {
        (lhs.seconds, lhs.nanos) < (rhs.seconds, rhs.nanos)
    }

    /// RFC 3339 in UTC, with as many fractional digits as needed (none for whole seconds).
    public var description: String {
        let civil = CivilTime(secondsSinceEpoch: seconds)
        var text = ""
        text += CELFormatting.padded(civil.year, width: 4) + "-" + CELFormatting.padded(civil.month, width: 2) + "-"
        text += CELFormatting.padded(civil.day, width: 2) + "T" + CELFormatting.padded(civil.hour, width: 2) + ":"
        text += CELFormatting.padded(civil.minute, width: 2) + ":" + CELFormatting.padded(civil.second, width: 2)
        text += CELFormatting.fraction(nanos: Int64(nanos))
        return text + "Z"
    }

    /// Parses RFC 3339 text such as `2023-02-03T23:31:20.5+01:00`.
    public init?(rfc3339 text: String) {
        let bytes = Array(text.utf8)
        var reader = DigitReader(bytes: bytes)
        guard let year = reader.digits(4), reader.expect(UInt8(ascii: "-")),
            let month = reader.digits(2), reader.expect(UInt8(ascii: "-")),
            let day = reader.digits(2), reader.expectAny([UInt8(ascii: "T"), UInt8(ascii: "t")]),
            let hour = reader.digits(2), reader.expect(UInt8(ascii: ":")),
            let minute = reader.digits(2), reader.expect(UInt8(ascii: ":")),
            let second = reader.digits(2)
        else { return nil }
        var nanos: Int64 = 0
        if reader.expect(UInt8(ascii: ".")) {
            var digitCount = 0
            while let digit = reader.digit() {
                digitCount += 1
                if digitCount <= 9 { nanos = nanos * 10 + Int64(digit) }
            }
            guard digitCount > 0 else { return nil }
            for _ in min(digitCount, 9)..<9 { nanos *= 10 }
        }
        var offsetSeconds: Int64 = 0
        if reader.expectAny([UInt8(ascii: "Z"), UInt8(ascii: "z")]) {
            offsetSeconds = 0
        } else {
            guard let sign = reader.next(), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-"),
                let offsetHours = reader.digits(2), reader.expect(UInt8(ascii: ":")),
                let offsetMinutes = reader.digits(2), offsetHours < 24, offsetMinutes < 60
            else { return nil }
            offsetSeconds = Int64(offsetHours * 3600 + offsetMinutes * 60) * (sign == UInt8(ascii: "-") ? -1 : 1)
        }
        guard reader.atEnd, (1...12).contains(month), day >= 1, day <= CivilTime.daysIn(month: month, year: year),
            hour < 24, minute < 60, second < 60
        else { return nil }
        let days = CivilTime.daysSinceEpoch(year: year, month: month, day: day)
        let local = days * 86_400 + Int64(hour * 3600 + minute * 60 + second)
        self.init(seconds: local - offsetSeconds, nanos: Int32(nanos))
    }

    /// `self + duration`, or nil when the result is out of range.
    func adding(_ duration: CELDuration) -> CELTimestamp? {
        let durationSeconds = duration.nanoseconds / 1_000_000_000
        let durationNanos = duration.nanoseconds % 1_000_000_000
        var newSeconds = seconds + durationSeconds
        var newNanos = Int64(nanos) + durationNanos
        if newNanos < 0 {
            newNanos += 1_000_000_000
            newSeconds -= 1
        } else if newNanos >= 1_000_000_000 {
            newNanos -= 1_000_000_000
            newSeconds += 1
        }
        return CELTimestamp(seconds: newSeconds, nanos: Int32(newNanos))
    }

    /// `self - other` as a duration, or nil when it does not fit a duration.
    func difference(_ other: CELTimestamp) -> CELDuration? {
        let (secondsPart, overflow1) = (seconds - other.seconds).multipliedReportingOverflow(by: 1_000_000_000)
        let (total, overflow2) = secondsPart.addingReportingOverflow(Int64(nanos) - Int64(other.nanos))
        guard !overflow1, !overflow2 else { return nil }
        return CELDuration(nanoseconds: total)
    }
}

/// A signed span of time with nanosecond precision, limited to what 64-bit nanoseconds hold
/// (about ±292 years) (`google.protobuf.Duration`).
public struct CELDuration: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public init?(seconds: Int64, nanos: Int32 = 0) {
        let (whole, overflow1) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let (total, overflow2) = whole.addingReportingOverflow(Int64(nanos))
        guard !overflow1, !overflow2 else { return nil }
        nanoseconds = total
    }

    public static func < (lhs: CELDuration, rhs: CELDuration) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    /// Seconds with a fraction as needed and an `s` suffix, e.g. `1.5s`, `-0.000000001s`, `60s`.
    public var description: String {
        let negative = nanoseconds < 0
        let magnitude = nanoseconds.magnitude
        var text = negative ? "-" : ""
        text += String(magnitude / 1_000_000_000)
        text += CELFormatting.fraction(nanos: Int64(magnitude % 1_000_000_000))
        return text + "s"
    }

    /// Parses Go-style duration text: an optional sign and a sequence of decimal numbers with
    /// units `h`, `m`, `s`, `ms`, `us` (or `µs`), `ns`, e.g. `1h30m`, `-1.5s`, `0`.
    public init?(parsing text: String) {
        var scalars = Array(text.unicodeScalars)[...]
        var negative = false
        if let first = scalars.first, first == "-" || first == "+" {
            negative = first == "-"
            scalars = scalars.dropFirst()
        }
        if scalars.count == 1, scalars.first == "0" {
            nanoseconds = 0
            return
        }
        guard !scalars.isEmpty else { return nil }
        // Accumulate in nanoseconds as a magnitude up to 2^63.
        var total: UInt64 = 0
        let limit: UInt64 = negative ? 1 << 63 : UInt64(Int64.max)
        while !scalars.isEmpty {
            var whole: UInt64 = 0
            var sawDigits = false
            while let scalar = scalars.first, let digit = asciiDigit(scalar) {
                let (times10, overflow1) = whole.multipliedReportingOverflow(by: 10)
                let (next, overflow2) = times10.addingReportingOverflow(UInt64(digit))
                guard !overflow1, !overflow2 else { return nil }
                whole = next
                sawDigits = true
                scalars = scalars.dropFirst()
            }
            var fraction: UInt64 = 0
            var fractionScale: UInt64 = 1
            if scalars.first == "." {
                scalars = scalars.dropFirst()
                while let scalar = scalars.first, let digit = asciiDigit(scalar) {
                    if fractionScale < 1_000_000_000_000_000 {
                        fraction = fraction * 10 + UInt64(digit)
                        fractionScale *= 10
                    }
                    sawDigits = true
                    scalars = scalars.dropFirst()
                }
            }
            guard sawDigits else { return nil }
            var unit = ""
            while let scalar = scalars.first, scalar != ".", asciiDigit(scalar) == nil {
                unit.unicodeScalars.append(scalar)
                scalars = scalars.dropFirst()
            }
            let unitNanos: UInt64
            switch unit {
            case "ns": unitNanos = 1
            case "us", "µs", "μs": unitNanos = 1_000
            case "ms": unitNanos = 1_000_000
            case "s": unitNanos = 1_000_000_000
            case "m": unitNanos = 60_000_000_000
            case "h": unitNanos = 3_600_000_000_000
            default: return nil
            }
            let (wholeNanos, overflow1) = whole.multipliedReportingOverflow(by: unitNanos)
            guard !overflow1 else { return nil }
            // fraction / fractionScale * unitNanos, computed without overflow.
            let fractionNanos = UInt64(Double(fraction) * (Double(unitNanos) / Double(fractionScale)))
            let (sum1, overflow2) = total.addingReportingOverflow(wholeNanos)
            let (sum2, overflow3) = sum1.addingReportingOverflow(fractionNanos)
            guard !overflow2, !overflow3, sum2 <= limit else { return nil }
            total = sum2
        }
        nanoseconds = negative ? Int64(truncatingIfNeeded: 0 &- total) : Int64(total)
    }
}

private func asciiDigit(_ scalar: Unicode.Scalar) -> Int? {
    scalar.value >= 48 && scalar.value <= 57 ? Int(scalar.value - 48) : nil
}

/// Reads fixed-width ASCII digit groups.
private struct DigitReader {
    let bytes: [UInt8]
    var index = 0

    var atEnd: Bool { index == bytes.count }

    mutating func next() -> UInt8? {
        guard index < bytes.count else { return nil }
        defer { index += 1 }
        return bytes[index]
    }

    mutating func digit() -> Int? {
        guard index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 else { return nil }
        defer { index += 1 }
        return Int(bytes[index] - 48)
    }

    mutating func digits(_ count: Int) -> Int? {
        var value = 0
        for _ in 0..<count {
            guard let digit = digit() else { return nil }
            value = value * 10 + digit
        }
        return value
    }

    mutating func expect(_ byte: UInt8) -> Bool {
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    mutating func expectAny(_ options: [UInt8]) -> Bool {
        guard index < bytes.count, options.contains(bytes[index]) else { return false }
        index += 1
        return true
    }
}

/// Proleptic Gregorian calendar fields of a moment, computed arithmetically (no Foundation).
struct CivilTime {
    var year: Int
    var month: Int  // 1...12
    var day: Int  // 1...31
    var hour: Int
    var minute: Int
    var second: Int
    var dayOfWeek: Int  // 0 = Sunday
    var dayOfYear: Int  // 0-based

    init(secondsSinceEpoch: Int64) {
        var days = secondsSinceEpoch / 86_400
        var secondsOfDay = secondsSinceEpoch % 86_400
        if secondsOfDay < 0 {
            secondsOfDay += 86_400
            days -= 1
        }
        hour = Int(secondsOfDay / 3600)
        minute = Int(secondsOfDay % 3600 / 60)
        second = Int(secondsOfDay % 60)
        // 1970-01-01 was a Thursday.
        dayOfWeek = Int(((days % 7) + 11) % 7)
        // Howard Hinnant's days-to-civil algorithm.
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYearMarch = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthPrime = (5 * dayOfYearMarch + 2) / 153
        day = Int(dayOfYearMarch - (153 * monthPrime + 2) / 5 + 1)
        month = Int(monthPrime < 10 ? monthPrime + 3 : monthPrime - 9)
        year = Int(yearOfEra + era * 400 + (month <= 2 ? 1 : 0))
        dayOfYear = Int(days - CivilTime.daysSinceEpoch(year: year, month: 1, day: 1))
    }

    static func isLeap(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days from 1970-01-01 to the given date.
    static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int64 {
        let adjustedYear = Int64(month <= 2 ? year - 1 : year)
        let era = (adjustedYear >= 0 ? adjustedYear : adjustedYear - 399) / 400
        let yearOfEra = adjustedYear - era * 400
        let monthIndex = Int64(month > 2 ? month - 3 : month + 9)
        let dayOfYear = (153 * monthIndex + 2) / 5 + Int64(day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
