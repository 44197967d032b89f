import AsyncHTTPClient
import FisoJSON
import FisoTemporal
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// `auth.oidc`: an access token from the OAuth 2.0 client-credentials grant, cached until shortly
/// before it expires so most calls fetch nothing.
final class OIDCClientCredentials: TemporalCredentials {
    /// A token is renewed this long before its `expires_in` runs out.
    static let renewBefore: Duration = .seconds(30)

    let settings: TemporalSinkSettings.OIDC
    let secret: HeaderValueSource.Resolved
    let httpClient: HTTPClient
    private let cache = NIOLockedValueBox<(token: String, validUntil: ContinuousClock.Instant)?>(nil)

    init(settings: TemporalSinkSettings.OIDC, secret: HeaderValueSource.Resolved, httpClient: HTTPClient) {
        self.settings = settings
        self.secret = secret
        self.httpClient = httpClient
    }

    func token() async throws -> String {
        let now = ContinuousClock.now
        if let cached = cache.withLockedValue({ $0 }), now < cached.validUntil { return cached.token }
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
        let validUntil = now + max(.zero, lifetime - Self.renewBefore)
        cache.withLockedValue { $0 = (token, validUntil) }
        return token
    }

    /// `application/x-www-form-urlencoded` escaping.
    static func encode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
