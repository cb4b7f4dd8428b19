package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/fernet/fernet-go"

	"github.com/trustack/trustack"
)

// Credentials, as Keystone keeps them: the blob encrypted at rest with the
// credential keys, an ec2 credential identified by the SHA-256 of its
// access key.

// EC2Blob is the blob of an ec2 credential.
type EC2Blob struct {
	Access  string  `json:"access"`
	Secret  string  `json:"secret"`
	TrustID *string `json:"trust_id"`
}

// ParseEC2Blob returns an ec2 credential's blob, or EINVALID unless it is
// a JSON object with an access and a secret key. (Keystone asks only for
// the access key, but a credential without a secret signs nothing.)
func ParseEC2Blob(blob string) (EC2Blob, error) {
	var b EC2Blob
	if err := json.Unmarshal([]byte(blob), &b); err != nil {
		return b, trustack.Errorf(trustack.EINVALID, "Invalid blob in credential: an ec2 credential's blob is a JSON object with an access and a secret key.")
	}
	if b.Access == "" || b.Secret == "" {
		return b, trustack.Errorf(trustack.EINVALID, "Invalid blob in credential: an ec2 credential's blob needs an access and a secret key.")
	}
	return b, nil
}

// EC2CredentialID returns the ID of the ec2 credential with the access
// key: its SHA-256 in hex, as Keystone's.
func EC2CredentialID(access string) string {
	sum := sha256.Sum256([]byte(access))
	return hex.EncodeToString(sum[:])
}

// checkCredential returns EINVALID unless c follows Keystone's rules, and
// ENOTFOUND for a user or project it names that does not exist; it sets
// c.Access. before is the credential before an update, nil for a new one.
func (s *Service) checkCredential(ctx context.Context, c, before *trustack.Credential) error {
	if n := utf8.RuneCountInString(c.Type); n == 0 || n > 255 {
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field 'credential.type': the type must have 1 to 255 characters.")
	}
	if c.UserID == "" {
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field 'credential.user_id': it is a required property.")
	}
	if _, err := s.Store.User(ctx, c.UserID); err != nil {
		return err
	}
	if c.ProjectID != "" {
		if _, err := s.Store.Project(ctx, c.ProjectID); err != nil {
			return err
		}
	}
	c.Access = ""
	if c.Type != trustack.CredentialEC2 {
		return nil
	}
	if c.ProjectID == "" {
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field 'credential.project_id': an ec2 credential needs a project.")
	}
	blob, err := ParseEC2Blob(c.Blob)
	if err != nil {
		return err
	}
	c.Access = blob.Access
	if before == nil || before.Type != trustack.CredentialEC2 {
		return nil
	}
	// As Keystone: what the credential's tokens are scoped by stays.
	if old, err := ParseEC2Blob(before.Blob); err == nil && deref(old.TrustID) != deref(blob.TrustID) {
		return trustack.Errorf(trustack.EINVALID, "trust_id can not be updated for credential.")
	}
	return nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// CreateCredential adds a credential, encrypting its blob. An ec2
// credential's ID is the SHA-256 of its access key; other credentials get
// a new ID. An access key in use gives ECONFLICT.
func (s *Service) CreateCredential(ctx context.Context, c *trustack.Credential) error {
	if err := s.checkCredential(ctx, c, nil); err != nil {
		return err
	}
	switch {
	case c.Type == trustack.CredentialEC2:
		c.ID = EC2CredentialID(c.Access)
	case c.ID == "":
		c.ID = NewID()
	}
	stored := *c
	var err error
	if stored.Blob, err = s.encrypt(c.Blob); err != nil {
		return err
	}
	return s.Store.CreateCredential(ctx, &stored)
}

// CreateEC2Credential makes a new ec2 credential of the user for the
// project, with random access and secret keys, as Keystone's OS-EC2
// extension does. The user and the project must exist (ENOTFOUND).
func (s *Service) CreateEC2Credential(ctx context.Context, userID, projectID string) (*trustack.Credential, error) {
	if projectID == "" {
		return nil, trustack.Errorf(trustack.EINVALID, "Invalid input for field 'tenant_id': it is a required property.")
	}
	blob, err := json.Marshal(EC2Blob{Access: randomHex(), Secret: randomHex()})
	if err != nil {
		return nil, err
	}
	c := &trustack.Credential{UserID: userID, ProjectID: projectID, Type: trustack.CredentialEC2, Blob: string(blob)}
	if err := s.CreateCredential(ctx, c); err != nil {
		return nil, err
	}
	return c, nil
}

// randomHex returns 16 random bytes in hex, as a UUID's hex in Keystone's
// EC2 keys.
func randomHex() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Credential returns a credential with its blob decrypted.
func (s *Service) Credential(ctx context.Context, id string) (*trustack.Credential, error) {
	c, err := s.Store.Credential(ctx, id)
	if err != nil {
		return nil, err
	}
	return c, s.decrypt(c)
}

// Credentials returns the credentials matching f, their blobs decrypted.
func (s *Service) Credentials(ctx context.Context, f trustack.CredentialFilter) ([]*trustack.Credential, error) {
	list, err := s.Store.Credentials(ctx, f)
	if err != nil {
		return nil, err
	}
	for _, c := range list {
		if err := s.decrypt(c); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// UpdateCredential changes a credential: fn sees it decrypted. Its ID is
// fixed, even when an ec2 credential's access key changes, as in Keystone.
func (s *Service) UpdateCredential(ctx context.Context, id string, fn func(*trustack.Credential) error) (*trustack.Credential, error) {
	var plain string
	c, err := s.Store.UpdateCredential(ctx, id, func(c *trustack.Credential) error {
		if err := s.decrypt(c); err != nil {
			return err
		}
		before := *c
		if err := fn(c); err != nil {
			return err
		}
		if err := s.checkCredential(ctx, c, &before); err != nil {
			return err
		}
		plain = c.Blob
		var err error
		c.Blob, err = s.encrypt(plain)
		return err
	})
	s.changed()
	if err != nil {
		return nil, err
	}
	c.Blob = plain
	return c, nil
}

// DeleteCredential deletes a credential.
func (s *Service) DeleteCredential(ctx context.Context, id string) error {
	err := s.Store.DeleteCredential(ctx, id)
	s.changed()
	return err
}

// errNoCredentialKeys is what a Service without credential keys says.
var errNoCredentialKeys = trustack.Errorf(trustack.EUNAVAILABLE, "Credentials are not available: the identity service has no credential key repository.")

// encrypt returns the blob encrypted and signed with the primary
// credential key.
func (s *Service) encrypt(blob string) (string, error) {
	keys := s.opts.CredentialKeys
	if keys == nil {
		return "", errNoCredentialKeys
	}
	tok, err := fernet.EncryptAndSignAtTime([]byte(blob), keys.Primary(), s.opts.Now())
	if err != nil {
		return "", fmt.Errorf("encrypt credential: %w", err)
	}
	return string(tok), nil
}

// decrypt replaces c's stored blob with its plain text.
func (s *Service) decrypt(c *trustack.Credential) error {
	keys := s.opts.CredentialKeys
	if keys == nil {
		return errNoCredentialKeys
	}
	b := fernet.VerifyAndDecrypt([]byte(c.Blob), 0, keys.All())
	if b == nil {
		return fmt.Errorf("decrypt credential %s: no key of the credential key repository opens it", c.ID)
	}
	c.Blob = string(b)
	return nil
}

// ec2Credential is what EC2Credential remembers of an access key.
type ec2Credential struct {
	secret string
	tok    *trustack.Token // IssuedAt, ExpiresAt and AuditIDs set per call
}

// EC2Credential returns the secret key of the ec2 credential with the
// access key, and a token of its user scoped to its project, with the
// roles the user holds there, as a password-authenticated token would
// have. The token is not sealed: it is for callers in this process, such
// as the S3 API, which check a request's signature with the secret. It
// gives EUNAUTHORIZED for an unknown access key, and when the user, the
// project or their domains are disabled or the user holds no role on the
// project. A credential of a trust, which trustack does not have, is
// refused likewise.
//
// It is called on every S3 request, so what it reads is cached like
// validated tokens; the token's fields are shared with the cache, and
// callers must not change them (the token itself is a new copy).
func (s *Service) EC2Credential(ctx context.Context, access string) (secret string, tok *trustack.Token, err error) {
	now, gen := s.opts.Now().UTC(), s.generation.Load()
	e, ok := s.ec2.get(access, gen, now)
	if !ok {
		if e, err = s.readEC2Credential(ctx, access); err != nil {
			return "", nil, err
		}
		s.ec2.put(access, cached[ec2Credential]{value: e, generation: gen, until: now.Add(s.opts.CacheTime)})
	}
	t := *e.tok
	t.IssuedAt, t.ExpiresAt, t.AuditIDs = now, now.Add(s.opts.TokenExpiration), []string{newAuditID()}
	return e.secret, &t, nil
}

var errUnknownAccessKey = trustack.Errorf(trustack.EUNAUTHORIZED, "Could not find an EC2 credential with this access key.")

func (s *Service) readEC2Credential(ctx context.Context, access string) (ec2Credential, error) {
	if access == "" {
		return ec2Credential{}, errUnknownAccessKey
	}
	list, err := s.Credentials(ctx, trustack.CredentialFilter{Type: trustack.CredentialEC2, Access: access})
	if err != nil {
		return ec2Credential{}, err
	}
	if len(list) == 0 {
		return ec2Credential{}, errUnknownAccessKey
	}
	c := list[0]
	blob, err := ParseEC2Blob(c.Blob)
	if err != nil {
		return ec2Credential{}, fmt.Errorf("ec2 credential %s: %w", c.ID, err)
	}
	if deref(blob.TrustID) != "" {
		return ec2Credential{}, trustack.Errorf(trustack.EUNAUTHORIZED, "The EC2 credential is of a trust, which this cloud does not support.")
	}
	tok, err := s.resolve(ctx, &payload{UserID: c.UserID, ProjectID: c.ProjectID, Methods: []string{"ec2credential"}})
	if err != nil {
		return ec2Credential{}, err
	}
	return ec2Credential{secret: blob.Secret, tok: tok}, nil
}
