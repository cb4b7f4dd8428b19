package identity

import (
	"crypto/sha256"
	"encoding/base64"

	"golang.org/x/crypto/bcrypt"

	"github.com/trustack/trustack"
)

// MaxPasswordLength is the longest password accepted, in bytes, as
// Keystone's max_password_length.
const MaxPasswordLength = 4096

// DefaultPasswordHashRounds is bcrypt's cost, as Keystone's default.
const DefaultPasswordHashRounds = 12

// hasher hashes and checks passwords with bcrypt. bcrypt reads at most 72
// bytes, so the password is first reduced to the base64 of its SHA-256:
// every byte of a long password counts, and no NUL byte reaches bcrypt.
type hasher struct {
	cost int
	// decoy is a hash to compare against when the user does not exist, so
	// that an unknown user costs as much time as a wrong password.
	decoy []byte
}

func newHasher(cost int) (*hasher, error) {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, trustack.Errorf(trustack.EINVALID, "password_hash_rounds must be between %d and %d, got %d", bcrypt.MinCost, bcrypt.MaxCost, cost)
	}
	h := &hasher{cost: cost}
	decoy, err := h.hash("decoy password")
	if err != nil {
		return nil, err
	}
	h.decoy = []byte(decoy)
	return h, nil
}

func prehash(password string) []byte {
	sum := sha256.Sum256([]byte(password))
	return []byte(base64.StdEncoding.EncodeToString(sum[:]))
}

// hash returns the stored form of password, or EINVALID if it is too long.
func (h *hasher) hash(password string) (string, error) {
	if len(password) > MaxPasswordLength {
		return "", trustack.Errorf(trustack.EINVALID, "Invalid input for field 'password': the password is longer than %d bytes.", MaxPasswordLength)
	}
	b, err := bcrypt.GenerateFromPassword(prehash(password), h.cost)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// matches reports whether password matches the stored hash. An empty hash
// matches nothing, but costs the same time as one that does not match.
func (h *hasher) matches(hash, password string) bool {
	if hash == "" {
		bcrypt.CompareHashAndPassword(h.decoy, prehash(password))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), prehash(password)) == nil
}
