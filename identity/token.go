package identity

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"time"
)

// payload is what a token carries, encrypted and signed with Fernet. It
// names things by ID only; validation looks the rest up, so that a token
// stops working as soon as its user, project or roles do.
type payload struct {
	UserID    string
	Methods   []string
	ProjectID string // set for a project-scoped token
	DomainID  string // set for a domain-scoped token
	IssuedAt  time.Time
	ExpiresAt time.Time
	AuditIDs  []string // one or two, each the URL-safe base64 of 16 bytes
}

// The authentication methods a token may record, as bits of one byte.
var methodBits = []string{"password", "token"}

const payloadVersion = 1

// Scope kinds on the wire.
const (
	scopeNone    = 0
	scopeProject = 1
	scopeDomain  = 2
)

var errBadPayload = errors.New("malformed token payload")

// marshal encodes p compactly: version, methods, scope kind, user ID, scope
// ID, issue and expiry times in microseconds, audit IDs. IDs that are
// UUIDs in hex take 16 bytes.
func (p *payload) marshal() ([]byte, error) {
	b := make([]byte, 0, 96)
	var methods byte
	for _, m := range p.Methods {
		i := indexOf(methodBits, m)
		if i < 0 {
			return nil, errors.New("unknown authentication method " + m)
		}
		methods |= 1 << i
	}
	scope, scopeID := byte(scopeNone), ""
	switch {
	case p.ProjectID != "":
		scope, scopeID = scopeProject, p.ProjectID
	case p.DomainID != "":
		scope, scopeID = scopeDomain, p.DomainID
	}
	b = append(b, payloadVersion, methods, scope)
	var err error
	if b, err = appendID(b, p.UserID); err != nil {
		return nil, err
	}
	if scope != scopeNone {
		if b, err = appendID(b, scopeID); err != nil {
			return nil, err
		}
	}
	b = binary.BigEndian.AppendUint64(b, uint64(p.IssuedAt.UnixMicro()))
	b = binary.BigEndian.AppendUint64(b, uint64(p.ExpiresAt.UnixMicro()))
	if len(p.AuditIDs) < 1 || len(p.AuditIDs) > 2 {
		return nil, errors.New("a token has one or two audit IDs")
	}
	b = append(b, byte(len(p.AuditIDs)))
	for _, a := range p.AuditIDs {
		raw, err := base64.RawURLEncoding.DecodeString(a)
		if err != nil || len(raw) != 16 {
			return nil, errors.New("malformed audit ID " + a)
		}
		b = append(b, raw...)
	}
	return b, nil
}

// unmarshal decodes what marshal encoded; any other input is an error.
func (p *payload) unmarshal(b []byte) error {
	r := reader{b: b}
	version, methods, scope := r.byte(), r.byte(), r.byte()
	if version != payloadVersion {
		return errBadPayload
	}
	*p = payload{}
	for i, m := range methodBits {
		if methods&(1<<i) != 0 {
			p.Methods = append(p.Methods, m)
		}
	}
	if methods>>len(methodBits) != 0 || len(p.Methods) == 0 {
		return errBadPayload
	}
	p.UserID = r.id()
	switch scope {
	case scopeNone:
	case scopeProject:
		p.ProjectID = r.id()
	case scopeDomain:
		p.DomainID = r.id()
	default:
		return errBadPayload
	}
	p.IssuedAt = time.UnixMicro(int64(r.uint64())).UTC()
	p.ExpiresAt = time.UnixMicro(int64(r.uint64())).UTC()
	n := int(r.byte())
	if n < 1 || n > 2 {
		return errBadPayload
	}
	for range n {
		p.AuditIDs = append(p.AuditIDs, base64.RawURLEncoding.EncodeToString(r.bytes(16)))
	}
	if r.err || len(r.b) != 0 || p.UserID == "" {
		return errBadPayload
	}
	return nil
}

// ID encodings: a UUID in lower-case hex as its 16 bytes, anything else as
// a length and the bytes.
const (
	idUUID   = 0
	idString = 1
)

func appendID(b []byte, id string) ([]byte, error) {
	if len(id) == 32 && id == hexLower(id) {
		if raw, err := hex.DecodeString(id); err == nil {
			return append(append(b, idUUID), raw...), nil
		}
	}
	if id == "" || len(id) > 255 {
		return nil, errors.New("an ID in a token must have 1 to 255 bytes")
	}
	return append(append(b, idString, byte(len(id))), id...), nil
}

func hexLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return ""
		}
	}
	return s
}

// reader consumes a payload; reading past the end sets err and yields zeros.
type reader struct {
	b   []byte
	err bool
}

func (r *reader) bytes(n int) []byte {
	if len(r.b) < n {
		r.err = true
		r.b = nil
		return make([]byte, n)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte     { return r.bytes(1)[0] }
func (r *reader) uint64() uint64 { return binary.BigEndian.Uint64(r.bytes(8)) }

func (r *reader) id() string {
	switch r.byte() {
	case idUUID:
		return hex.EncodeToString(r.bytes(16))
	case idString:
		s := string(r.bytes(int(r.byte())))
		if s == "" {
			r.err = true
		}
		return s
	default:
		r.err = true
		return ""
	}
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}
