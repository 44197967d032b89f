import AsyncHTTPClient
import FisoJSON
import FisoTemporal
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// `auth.oidc`: an access token from the OAuth 2.0 client-credentials grant, cached until shortly
/// before it expires so most calls fetch nothing. Calls that find no valid token share one
/// request to the token endpoint instead of each sending their own.
final class OIDCClientCredentials: TemporalCredentials {
    /// A token is renewed this long before its `expires_in` runs out (half its lifetime when that
    /// is shorter).
    static let renewBefore: Duration = .seconds(30)

    private struct Token: Sendable {
        var value: String
        var validUntil: ContinuousClock.Instant
    }

    private enum Cache {
        case empty
        case fetching(Task<Token, any Error>)
        case valid(Token)
    }

    private enum Lookup {
        case cached(String)
        case wait(Task<Token, any Error>)
    }

    let settings: TemporalSinkSettings.OIDC
    let secret: HeaderValueSource.Resolved
    let httpClient: HTTPClient
    private let cache = NIOLockedValueBox(Cache.empty)

    init(settings: TemporalSinkSettings.OIDC, secret: HeaderValueSource.Resolved, httpClient: HTTPClient) {
        self.settings = settings
        self.secret = secret
        self.httpClient = httpClient
    }

    func token() async throws -> String {
        let now = ContinuousClock.now
        let next = cache.withLockedValue { cache -> Lookup in
            switch cache {
            case .valid(let token) where now < token.validUntil: return .cached(token.value)
            case .fetching(let task): return .wait(task)
            case .empty, .valid:
                let task = Task { try await self.fetch() }
                cache = .fetching(task)
                return .wait(task)
            }
        }
        let fetch: Task<Token, any Error>
        switch next {
        case .cached(let value): return value
        case .wait(let task): fetch = task
        }
        do {
            let token = try await fetch.value
            cache.withLockedValue { cache in
                if case .fetching(let current) = cache, current == fetch { cache = .valid(token) }
            }
            return token.value
        } catch {
            // The next call tries again (the pipeline retries the event meanwhile).
            cache.withLockedValue { cache in
                if case .fetching(let current) = cache, current == fetch { cache = .empty }
            }
            throw error
        }
    }

    private func fetch() async throws -> Token {
        var form = [
            ("grant_type", "client_credentials"), ("client_id", settings.clientID),
            ("client_secret", try secret.current()),
        ]
        if !settings.scopes.isEmpty { form.append(("scope", settings.scopes.joined(separator: " "))) }
        var request = HTTPClientRequest(url: settings.tokenURL)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "Accept", value: "application/json")
        request.body = .bytes(
            ByteBuffer(string: form.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&")))
        let requested = ContinuousClock.now
        let response = try await httpClient.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status.code == 200 else {
            throw TemporalConfigurationError(
                "OIDC token endpoint \(settings.tokenURL) answered \(response.status.code)")
        }
        let json = try JSONValue(parsing: Array(buffer: body))
        guard case .object(let object) = json, let token = object["access_token"]?.stringValue, !token.isEmpty else {
            throw TemporalConfigurationError("OIDC token endpoint \(settings.tokenURL) sent no access_token")
        }
        var lifetime: Duration = .seconds(60)
        switch object["expires_in"] {
        case .int(let seconds)?: lifetime = .seconds(seconds)
        case .double(let seconds)?: lifetime = .seconds(seconds)
        case .string(let text)?: if let seconds = Int64(text) { lifetime = .seconds(seconds) }
        default: break
        }
        // Counted from the request, not the answer: the token's clock started at the server.
        let margin = min(Self.renewBefore, lifetime / 2)
        return Token(value: token, validUntil: requested + max(.zero, lifetime - margin))
    }

    /// `application/x-www-form-urlencoded` escaping.
    static func encode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
