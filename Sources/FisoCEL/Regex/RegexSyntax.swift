/// Why a regular expression was rejected.
struct CELRegexError: Error, Sendable {
    let message: String
}

/// A set of code points: ranges, Unicode general categories and nested (possibly negated) sets.
struct RegexCharacterClass: Sendable {
    enum Item: Sendable {
        case range(UInt32, UInt32)
        case categories(Set<UInt8>)
        case nested(RegexCharacterClass)
    }

    var items: [Item] = []
    var negated = false
    /// Case-insensitive matching: a scalar also matches through its simple case variants.
    var caseInsensitive = false

    func contains(_ scalar: Unicode.Scalar) -> Bool {
        var found = containsExactly(scalar.value)
        if !found && caseInsensitive {
            for variant in RegexCase.variants(of: scalar) where variant != scalar.value && containsExactly(variant) {
                found = true
                break
            }
        }
        return found != negated
    }

    private func containsExactly(_ value: UInt32) -> Bool {
        for item in items {
            switch item {
            case .range(let low, let high): if value >= low && value <= high { return true }
            case .categories(let categories):
                if let scalar = Unicode.Scalar(value),
                    categories.contains(RegexCategory.code(scalar.properties.generalCategory))
                {
                    return true
                }
            case .nested(let inner):
                if let scalar = Unicode.Scalar(value), inner.contains(scalar) { return true }
            }
        }
        return false
    }
}

enum RegexCase {
    /// The scalar and its simple lowercase, uppercase and titlecase forms.
    static func variants(of scalar: Unicode.Scalar) -> [UInt32] {
        var result: [UInt32] = [scalar.value]
        let properties = scalar.properties
        for mapping in [properties.lowercaseMapping, properties.uppercaseMapping, properties.titlecaseMapping] {
            let scalars = mapping.unicodeScalars
            if scalars.count == 1, let first = scalars.first, !result.contains(first.value) {
                result.append(first.value)
            }
        }
        // Characters whose lowercase forms coincide (e.g. K and the Kelvin sign) fold together.
        if let lower = properties.lowercaseMapping.unicodeScalars.first,
            properties.lowercaseMapping.unicodeScalars.count == 1
        {
            let upper = lower.properties.uppercaseMapping.unicodeScalars
            if upper.count == 1, let value = upper.first?.value, !result.contains(value) { result.append(value) }
        }
        return result
    }
}

/// Unicode general categories by their one- and two-letter names (`L`, `Lu`, `Nd`...).
enum RegexCategory {
    private static let all: [(String, Unicode.GeneralCategory)] = [
        ("Lu", .uppercaseLetter), ("Ll", .lowercaseLetter), ("Lt", .titlecaseLetter), ("Lm", .modifierLetter),
        ("Lo", .otherLetter), ("Mn", .nonspacingMark), ("Mc", .spacingMark), ("Me", .enclosingMark),
        ("Nd", .decimalNumber), ("Nl", .letterNumber), ("No", .otherNumber), ("Pc", .connectorPunctuation),
        ("Pd", .dashPunctuation), ("Ps", .openPunctuation), ("Pe", .closePunctuation),
        ("Pi", .initialPunctuation), ("Pf", .finalPunctuation), ("Po", .otherPunctuation), ("Sm", .mathSymbol),
        ("Sc", .currencySymbol), ("Sk", .modifierSymbol), ("So", .otherSymbol), ("Zs", .spaceSeparator),
        ("Zl", .lineSeparator), ("Zp", .paragraphSeparator), ("Cc", .control), ("Cf", .format),
        ("Cs", .surrogate), ("Co", .privateUse), ("Cn", .unassigned),
    ]

    static func code(_ category: Unicode.GeneralCategory) -> UInt8 {
        UInt8(all.firstIndex { $0.1 == category } ?? 0)
    }

    /// The category codes for a name such as `L` or `Lu`; `Any` matches everything.
    static func codes(named name: String) -> Set<UInt8>? {
        if name == "Any" { return Set(0..<UInt8(all.count)) }
        var result: Set<UInt8> = []
        for (index, entry) in all.enumerated() where entry.0 == name || (name.count == 1 && entry.0.hasPrefix(name)) {
            result.insert(UInt8(index))
        }
        return result.isEmpty ? nil : result
    }
}

/// A parsed regular expression.
indirect enum RegexNode: Sendable {
    case empty
    case literal(Unicode.Scalar, caseInsensitive: Bool)
    case characterClass(RegexCharacterClass)
    case anyCharacter(includingNewline: Bool)
    case assertion(RegexAssertion)
    case concatenation([RegexNode])
    case alternation([RegexNode])
    case repetition(RegexNode, minimum: Int, maximum: Int?, greedy: Bool)
}

enum RegexAssertion: Sendable {
    case beginText, endText, beginLine, endLine, wordBoundary, notWordBoundary
}

/// Parses RE2 syntax (https://github.com/google/re2/wiki/Syntax) without the features that need
/// backtracking (backreferences, lookaround), which RE2 does not have either.
struct RegexParser {
    private struct Flags {
        var caseInsensitive = false
        var multiLine = false
        var dotAll = false
        var ungreedy = false
    }

    private let scalars: [Unicode.Scalar]
    private var index = 0
    private var flags = Flags()
    private var depth = 0
    static let maximumRepeat = 1000
    static let maximumDepth = 200

    init(_ pattern: String) { scalars = Array(pattern.unicodeScalars) }

    static func parse(_ pattern: String) throws(CELRegexError) -> RegexNode {
        var parser = RegexParser(pattern)
        let node = try parser.parseAlternation()
        if parser.index < parser.scalars.count {
            throw CELRegexError(message: "unexpected ')'")
        }
        return node
    }

    private var current: Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }

    private mutating func parseAlternation() throws(CELRegexError) -> RegexNode {
        depth += 1
        defer { depth -= 1 }
        guard depth <= RegexParser.maximumDepth else { throw CELRegexError(message: "expression nests too deeply") }
        var branches = [try parseConcatenation()]
        while current == "|" {
            index += 1
            branches.append(try parseConcatenation())
        }
        return branches.count == 1 ? branches[0] : .alternation(branches)
    }

    private mutating func parseConcatenation() throws(CELRegexError) -> RegexNode {
        var items: [RegexNode] = []
        while let scalar = current, scalar != "|", scalar != ")" {
            var atom: RegexNode
            switch scalar {
            case "(":
                index += 1
                atom = try parseGroup()
            case "[":
                index += 1
                atom = .characterClass(try parseClass())
            case ".":
                index += 1
                atom = .anyCharacter(includingNewline: flags.dotAll)
            case "^":
                index += 1
                atom = .assertion(flags.multiLine ? .beginLine : .beginText)
            case "$":
                index += 1
                atom = .assertion(flags.multiLine ? .endLine : .endText)
            case "\\":
                index += 1
                atom = try parseEscape()
            case "*", "+", "?":
                throw CELRegexError(message: "missing argument to repetition operator: \(scalar)")
            case "{" where isRepeatCount():
                throw CELRegexError(message: "missing argument to repetition operator: {")
            default:
                index += 1
                atom = .literal(scalar, caseInsensitive: flags.caseInsensitive)
            }
            if case .empty = atom { continue }
            atom = try parseRepetitions(of: atom)
            items.append(atom)
        }
        if items.isEmpty { return .empty }
        return items.count == 1 ? items[0] : .concatenation(items)
    }

    private func isRepeatCount() -> Bool {
        var probe = index + 1
        var sawDigit = false
        while probe < scalars.count, scalars[probe].properties.numericType != nil, scalars[probe].isASCII {
            probe += 1
            sawDigit = true
        }
        guard sawDigit, probe < scalars.count else { return false }
        if scalars[probe] == "}" { return true }
        guard scalars[probe] == "," else { return false }
        probe += 1
        while probe < scalars.count, scalars[probe].properties.numericType != nil, scalars[probe].isASCII { probe += 1 }
        return probe < scalars.count && scalars[probe] == "}"
    }

    private mutating func readNumber() -> Int? {
        var value = 0
        var digits = 0
        while let scalar = current, scalar.isASCII, let digit = Int(String(scalar)) {
            value = min(value * 10 + digit, 100_000)
            digits += 1
            index += 1
        }
        return digits > 0 ? value : nil
    }

    private mutating func parseRepetitions(of atom: RegexNode) throws(CELRegexError) -> RegexNode {
        var node = atom
        var repeated = false
        while let scalar = current {
            var minimum = 0
            var maximum: Int?
            switch scalar {
            case "*":
                index += 1
            case "+":
                index += 1
                minimum = 1
            case "?":
                index += 1
                maximum = 1
            case "{" where isRepeatCount():
                index += 1
                minimum = readNumber() ?? 0
                if current == "," {
                    index += 1
                    maximum = readNumber()
                } else {
                    maximum = minimum
                }
                index += 1  // }
                guard minimum <= RegexParser.maximumRepeat, (maximum ?? 0) <= RegexParser.maximumRepeat else {
                    throw CELRegexError(message: "bad repetition operator: count above \(RegexParser.maximumRepeat)")
                }
                if let maximum, maximum < minimum {
                    throw CELRegexError(message: "bad repetition operator: maximum below minimum")
                }
            default:
                return node
            }
            if repeated { throw CELRegexError(message: "bad repetition operator: repeated repetition") }
            repeated = true
            var greedy = !flags.ungreedy
            if current == "?" {
                index += 1
                greedy.toggle()
            }
            node = .repetition(node, minimum: minimum, maximum: maximum, greedy: greedy)
        }
        return node
    }

    private mutating func parseGroup() throws(CELRegexError) -> RegexNode {
        if current == "?" {
            index += 1
            if current == "P" || current == "<" {
                if current == "P" { index += 1 }
                guard current == "<" else { throw CELRegexError(message: "invalid named capture group") }
                index += 1
                var nameLength = 0
                while let scalar = current, scalar != ">" {
                    guard scalar == "_" || scalar.properties.isAlphabetic || scalar.properties.numericType != nil else {
                        throw CELRegexError(message: "invalid named capture group name")
                    }
                    index += 1
                    nameLength += 1
                }
                guard current == ">", nameLength > 0 else {
                    throw CELRegexError(message: "invalid named capture group")
                }
                index += 1
                return try groupBody(restoring: flags)
            }
            // Flags: (?i) (?i-s) (?i:re)
            let saved = flags
            var clearing = false
            var sawFlag = false
            while let scalar = current {
                index += 1
                switch scalar {
                case "i": flags.caseInsensitive = !clearing
                case "m": flags.multiLine = !clearing
                case "s": flags.dotAll = !clearing
                case "U": flags.ungreedy = !clearing
                case "-":
                    guard !clearing else { throw CELRegexError(message: "invalid or unsupported Perl syntax: (?") }
                    clearing = true
                    continue
                case ")":
                    guard sawFlag else { throw CELRegexError(message: "missing flags in (?)") }
                    return .empty
                case ":":
                    return try groupBody(restoring: saved)
                default:
                    throw CELRegexError(message: "invalid or unsupported Perl syntax: (?\(scalar)")
                }
                sawFlag = true
            }
            throw CELRegexError(message: "missing closing )")
        }
        return try groupBody(restoring: flags)
    }

    private mutating func groupBody(restoring saved: Flags) throws(CELRegexError) -> RegexNode {
        let inner = try parseAlternation()
        guard current == ")" else { throw CELRegexError(message: "missing closing )") }
        index += 1
        flags = saved
        // A group always matches as a unit, even when empty.
        if case .empty = inner { return .concatenation([]) }
        return inner
    }

    private mutating func parseEscape() throws(CELRegexError) -> RegexNode {
        guard let scalar = current else { throw CELRegexError(message: "trailing backslash at end of expression") }
        index += 1
        switch scalar {
        case "A": return .assertion(.beginText)
        case "z": return .assertion(.endText)
        case "b": return .assertion(.wordBoundary)
        case "B": return .assertion(.notWordBoundary)
        case "Q":
            var literals: [RegexNode] = []
            while let next = current {
                if next == "\\", index + 1 < scalars.count, scalars[index + 1] == "E" {
                    index += 2
                    break
                }
                literals.append(.literal(next, caseInsensitive: flags.caseInsensitive))
                index += 1
            }
            return .concatenation(literals)
        case "E": return .empty
        default:
            index -= 1
            if let set = try parseClassEscape() { return .characterClass(set) }
            let value = try parseLiteralEscape()
            return .literal(value, caseInsensitive: flags.caseInsensitive)
        }
    }

    /// `\d \D \s \S \w \W \pL \p{Lu} \PL`; nil when the escape is not a class.
    private mutating func parseClassEscape() throws(CELRegexError) -> RegexCharacterClass? {
        guard let scalar = current else { return nil }
        var set = RegexCharacterClass()
        switch scalar {
        case "d", "D":
            set.items = [.range(48, 57)]
            set.negated = scalar == "D"
        case "s", "S":
            set.items = [.range(9, 10), .range(12, 13), .range(32, 32)]
            set.negated = scalar == "S"
        case "w", "W":
            set.items = [.range(48, 57), .range(65, 90), .range(97, 122), .range(95, 95)]
            set.negated = scalar == "W"
        case "p", "P":
            index += 1
            var name = ""
            var negated = scalar == "P"
            if current == "{" {
                index += 1
                if current == "^" {
                    negated.toggle()
                    index += 1
                }
                while let next = current, next != "}" {
                    name.unicodeScalars.append(next)
                    index += 1
                }
                guard current == "}" else { throw CELRegexError(message: "invalid character class range") }
            } else if let next = current {
                name = String(next)
            }
            guard let codes = RegexCategory.codes(named: name) else {
                throw CELRegexError(message: "invalid or unsupported character class: \\p{\(name)}")
            }
            set.items = [.categories(codes)]
            set.negated = negated
            set.caseInsensitive = flags.caseInsensitive
        default:
            return nil
        }
        index += 1
        return set
    }

    private mutating func parseLiteralEscape() throws(CELRegexError) -> Unicode.Scalar {
        guard let scalar = current else { throw CELRegexError(message: "trailing backslash at end of expression") }
        index += 1
        switch scalar {
        case "a": return "\u{07}"
        case "f": return "\u{0C}"
        case "t": return "\t"
        case "n": return "\n"
        case "r": return "\r"
        case "v": return "\u{0B}"
        case "0"..."7":
            // Octal: up to three digits.
            var value = UInt32(scalar.value - 48)
            var digits = 1
            while digits < 3, let next = current, next >= "0", next <= "7" {
                value = value * 8 + (next.value - 48)
                index += 1
                digits += 1
            }
            guard value != 0 || digits > 1 || scalar == "0", let result = Unicode.Scalar(value) else {
                throw CELRegexError(message: "invalid escape sequence")
            }
            if scalar != "0" && digits == 1 {
                throw CELRegexError(message: "backreferences are not supported: \\\(scalar)")
            }
            return result
        case "x":
            var value: UInt32 = 0
            if current == "{" {
                index += 1
                var digits = 0
                while let next = current, next != "}" {
                    guard let digit = Character(next).hexDigitValue else {
                        throw CELRegexError(message: "invalid escape sequence")
                    }
                    value = value * 16 + UInt32(digit)
                    guard value <= 0x10FFFF else { throw CELRegexError(message: "invalid escape sequence") }
                    index += 1
                    digits += 1
                }
                guard current == "}", digits > 0 else { throw CELRegexError(message: "invalid escape sequence") }
                index += 1
            } else {
                for _ in 0..<2 {
                    guard let next = current, let digit = Character(next).hexDigitValue else {
                        throw CELRegexError(message: "invalid escape sequence")
                    }
                    value = value * 16 + UInt32(digit)
                    index += 1
                }
            }
            guard let result = Unicode.Scalar(value) else { throw CELRegexError(message: "invalid escape sequence") }
            return result
        default:
            // Punctuation escapes itself; escaped letters and digits without a meaning are errors.
            if scalar.isASCII, !scalar.properties.isAlphabetic, scalar.properties.numericType == nil {
                return scalar
            }
            throw CELRegexError(message: "invalid escape sequence: \\\(scalar)")
        }
    }

    private static let posixClasses: [String: [(UInt32, UInt32)]] = [
        "alnum": [(48, 57), (65, 90), (97, 122)], "alpha": [(65, 90), (97, 122)], "ascii": [(0, 127)],
        "blank": [(9, 9), (32, 32)], "cntrl": [(0, 31), (127, 127)], "digit": [(48, 57)], "graph": [(33, 126)],
        "lower": [(97, 122)], "print": [(32, 126)], "punct": [(33, 47), (58, 64), (91, 96), (123, 126)],
        "space": [(9, 13), (32, 32)], "upper": [(65, 90)], "word": [(48, 57), (65, 90), (97, 122), (95, 95)],
        "xdigit": [(48, 57), (65, 70), (97, 102)],
    ]

    private mutating func parseClass() throws(CELRegexError) -> RegexCharacterClass {
        var set = RegexCharacterClass()
        set.caseInsensitive = flags.caseInsensitive
        if current == "^" {
            set.negated = true
            index += 1
        }
        var first = true
        while true {
            guard let scalar = current else { throw CELRegexError(message: "missing closing ]") }
            if scalar == "]" && !first { break }
            first = false
            if scalar == "[", index + 1 < scalars.count, scalars[index + 1] == ":" {
                // [:alpha:] and [:^alpha:]
                var probe = index + 2
                var negated = false
                if probe < scalars.count, scalars[probe] == "^" {
                    negated = true
                    probe += 1
                }
                var name = ""
                while probe < scalars.count, scalars[probe] != ":" {
                    name.unicodeScalars.append(scalars[probe])
                    probe += 1
                }
                if probe + 1 < scalars.count, scalars[probe + 1] == "]", let ranges = RegexParser.posixClasses[name] {
                    var inner = RegexCharacterClass()
                    inner.items = ranges.map { .range($0.0, $0.1) }
                    inner.negated = negated
                    set.items.append(.nested(inner))
                    index = probe + 2
                    continue
                }
            }
            if scalar == "\\" {
                index += 1
                if let nested = try parseClassEscape() {
                    set.items.append(.nested(nested))
                    continue
                }
                index -= 1
            }
            let low = try classAtom()
            if current == "-", index + 1 < scalars.count, scalars[index + 1] != "]" {
                index += 1
                let high = try classAtom()
                guard high.value >= low.value else { throw CELRegexError(message: "invalid character class range") }
                set.items.append(.range(low.value, high.value))
            } else {
                set.items.append(.range(low.value, low.value))
            }
        }
        index += 1
        return set
    }

    private mutating func classAtom() throws(CELRegexError) -> Unicode.Scalar {
        guard let scalar = current else { throw CELRegexError(message: "missing closing ]") }
        if scalar == "\\" {
            index += 1
            return try parseLiteralEscape()
        }
        index += 1
        return scalar
    }
}
