package compute

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"golang.org/x/crypto/ssh"

	"github.com/trustack/trustack"
)

// Flavors.

// CreateFlavor adds a flavor, giving it a UUID if it has no ID.
func (s *Service) CreateFlavor(ctx context.Context, f *trustack.Flavor) error {
	switch {
	case strings.TrimSpace(f.Name) == "" || utf8.RuneCountInString(f.Name) > 255:
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field/attribute name. The flavor name must have 1 to 255 characters.")
	case f.VCPUs < 1 || f.RAM < 1:
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field/attribute flavor. vcpus and ram must be at least 1.")
	case f.Disk < 0 || f.Ephemeral < 0 || f.Swap < 0:
		return trustack.Errorf(trustack.EINVALID, "Invalid input for field/attribute flavor. disk, ephemeral and swap may not be negative.")
	case f.RXTXFactor <= 0:
		f.RXTXFactor = 1.0
	}
	if f.ID == "" {
		f.ID = uuid.NewString()
	}
	err := s.store.CreateFlavor(ctx, f)
	if trustack.ErrorCode(err) == trustack.ECONFLICT {
		return trustack.Errorf(trustack.ECONFLICT, "Flavor with name %s or ID %s already exists.", f.Name, f.ID)
	}
	return err
}

// Flavor returns one flavor.
func (s *Service) Flavor(ctx context.Context, id string) (*trustack.Flavor, error) {
	f, err := s.store.Flavor(ctx, id)
	if trustack.ErrorCode(err) == trustack.ENOTFOUND {
		return nil, trustack.Errorf(trustack.ENOTFOUND, "Flavor %s could not be found.", id)
	}
	return f, err
}

// Flavors lists flavors.
func (s *Service) Flavors(ctx context.Context, f trustack.FlavorFilter) ([]*trustack.Flavor, error) {
	return s.store.Flavors(ctx, f)
}

// DeleteFlavor deletes a flavor; servers keep the copy they were made with.
func (s *Service) DeleteFlavor(ctx context.Context, id string) error {
	err := s.store.DeleteFlavor(ctx, id)
	if trustack.ErrorCode(err) == trustack.ENOTFOUND {
		return trustack.Errorf(trustack.ENOTFOUND, "Flavor %s could not be found.", id)
	}
	return err
}

// SetExtraSpecs merges specs into a flavor's extra specs.
func (s *Service) SetExtraSpecs(ctx context.Context, id string, specs map[string]string) (map[string]string, error) {
	for k, v := range specs {
		if k == "" || len(k) > 255 || len(v) > 255 {
			return nil, trustack.Errorf(trustack.EINVALID, "Invalid input for field/attribute extra_specs. Keys and values must have at most 255 characters, keys at least one.")
		}
	}
	f, err := s.store.UpdateFlavor(ctx, id, func(f *trustack.Flavor) error {
		if f.ExtraSpecs == nil {
			f.ExtraSpecs = map[string]string{}
		}
		maps.Copy(f.ExtraSpecs, specs)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return f.ExtraSpecs, nil
}

// DeleteExtraSpec removes one extra spec, or gives ENOTFOUND.
func (s *Service) DeleteExtraSpec(ctx context.Context, id, key string) error {
	_, err := s.store.UpdateFlavor(ctx, id, func(f *trustack.Flavor) error {
		if _, ok := f.ExtraSpecs[key]; !ok {
			return trustack.Errorf(trustack.ENOTFOUND, "Flavor %s has no extra specs with key %s.", id, key)
		}
		delete(f.ExtraSpecs, key)
		return nil
	})
	return err
}

// FlavorAccess lists the projects a private flavor is shared with; a
// public flavor has no access list (ENOTFOUND, as Nova).
func (s *Service) FlavorAccess(ctx context.Context, id string) ([]string, error) {
	f, err := s.Flavor(ctx, id)
	if err != nil {
		return nil, err
	}
	if f.Public {
		return nil, trustack.Errorf(trustack.ENOTFOUND, "Access list not available for public flavors.")
	}
	return s.store.FlavorAccess(ctx, id)
}

// ShareFlavor shares or stops sharing a private flavor with a project,
// and returns the projects it is then shared with. Sharing a public
// flavor is ECONFLICT unless evenPublic, as Nova recorded such shares,
// to no effect, before microversion 2.7. Sharing twice is ECONFLICT,
// stopping a share that is not ENOTFOUND.
func (s *Service) ShareFlavor(ctx context.Context, id, projectID string, share, evenPublic bool) ([]string, error) {
	f, err := s.Flavor(ctx, id)
	if err != nil {
		return nil, err
	}
	switch {
	case share && f.Public && !evenPublic:
		return nil, trustack.Errorf(trustack.ECONFLICT, "Can not add access to a public flavor.")
	case share:
		err = s.store.AddFlavorAccess(ctx, id, projectID)
		if trustack.ErrorCode(err) == trustack.ECONFLICT {
			err = trustack.Errorf(trustack.ECONFLICT, "Flavor access already exists for flavor %s and project %s combination.", id, projectID)
		}
	default:
		err = s.store.RemoveFlavorAccess(ctx, id, projectID)
	}
	if err != nil {
		return nil, err
	}
	return s.store.FlavorAccess(ctx, id)
}

// Keypairs.

// CreateKeypair adds the keypair k of k.UserID (the caller's when ""),
// of type k.Type ("ssh" when "", or "x509"): it imports k.PublicKey, kept
// exactly as given, or, when that is "", makes a new key pair of the type
// and returns its private key, which is not kept. A public key that is not
// of the type is EINVALID; ECONFLICT if the user has a keypair of that
// name, EOVERQUOTA beyond the caller's project's limit.
func (s *Service) CreateKeypair(ctx context.Context, c Caller, k trustack.Keypair) (*trustack.Keypair, string, error) {
	if err := checkKeypairName(k.Name); err != nil {
		return nil, "", err
	}
	if k.UserID == "" {
		k.UserID = c.UserID
	}
	if k.Type == "" {
		k.Type = trustack.KeypairSSH
	}
	var private string
	var err error
	switch k.Type {
	case trustack.KeypairSSH:
		if k.PublicKey == "" {
			k.PublicKey, private, err = newSSHKey()
			if err != nil {
				return nil, "", err
			}
		}
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k.PublicKey))
		if err != nil {
			return nil, "", trustack.Errorf(trustack.EINVALID, "Keypair data is invalid: failed to generate fingerprint")
		}
		k.Fingerprint = ssh.FingerprintLegacyMD5(pub)
	case trustack.KeypairX509:
		if k.PublicKey == "" {
			k.PublicKey, private, err = newX509Key(k.UserID, s.opts.Now())
			if err != nil {
				return nil, "", err
			}
		}
		block, _ := pem.Decode([]byte(k.PublicKey))
		if block == nil || block.Type != "CERTIFICATE" {
			return nil, "", trustack.Errorf(trustack.EINVALID, "Keypair data is invalid: failed to generate X509 fingerprint: not a PEM certificate")
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return nil, "", trustack.Errorf(trustack.EINVALID, "Keypair data is invalid: failed to generate X509 fingerprint: %v", err)
		}
		sum := sha1.Sum(block.Bytes)
		hexes := make([]string, len(sum))
		for i, b := range sum {
			hexes[i] = fmt.Sprintf("%02x", b)
		}
		k.Fingerprint = strings.Join(hexes, ":")
	default:
		return nil, "", trustack.Errorf(trustack.EINVALID, "Invalid input for field/attribute type. Value: %s. %q is not one of ['ssh', 'x509']", k.Type, k.Type)
	}
	limits, err := s.Limits(ctx, c.ProjectID)
	if err != nil {
		return nil, "", err
	}
	k.CreatedAt = s.opts.Now().UTC()
	if err := s.store.CreateKeypair(ctx, &k, limits[trustack.QuotaKeyPairs]); err != nil {
		return nil, "", err
	}
	return &k, private, nil
}

// newSSHKey makes an RSA key pair and returns its public key in
// authorized_keys form and its private key in PEM, as Nova does.
func newSSHKey() (public, private string, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", err
	}
	pub, err := ssh.NewPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", err
	}
	public = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " Generated-by-Nova"
	private = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	return public, private, nil
}

// newX509Key makes an RSA key and a self-signed certificate of it for
// user, valid ten years from now, as Nova makes x509 keypairs (for
// WinRM), and returns both in PEM.
func newX509Key(user string, now time.Time) (public, private string, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: user},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	public = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	private = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	return public, private, nil
}

// checkKeypairName applies Nova's rule: 1 to 255 characters, letters,
// digits, spaces and ._- only.
func checkKeypairName(name string) error {
	ok := strings.TrimSpace(name) != "" && utf8.RuneCountInString(name) <= 255
	for _, r := range name {
		if !(r == '.' || r == '_' || r == '-' || r == ' ' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			ok = false
		}
	}
	if !ok {
		return trustack.Errorf(trustack.EINVALID, "Keypair data is invalid: Keypair name contains unsafe characters")
	}
	return nil
}

// Keypair returns one of the user's keypairs.
func (s *Service) Keypair(ctx context.Context, userID, name string) (*trustack.Keypair, error) {
	return s.store.Keypair(ctx, userID, name)
}

// Keypairs returns the user's keypairs.
func (s *Service) Keypairs(ctx context.Context, userID string) ([]*trustack.Keypair, error) {
	return s.store.Keypairs(ctx, userID)
}

// DeleteKeypair deletes one of the user's keypairs.
func (s *Service) DeleteKeypair(ctx context.Context, userID, name string) error {
	return s.store.DeleteKeypair(ctx, userID, name)
}

// Server groups.

// CreateServerGroup makes a group with one policy, within the project's
// quota.
func (s *Service) CreateServerGroup(ctx context.Context, c Caller, name, policy string) (*trustack.ServerGroup, error) {
	if strings.TrimSpace(name) == "" || utf8.RuneCountInString(name) > 255 {
		return nil, trustack.Errorf(trustack.EINVALID, "Invalid input for field/attribute name. The name must have 1 to 255 characters.")
	}
	switch policy {
	case trustack.PolicyAffinity, trustack.PolicyAntiAffinity, trustack.PolicySoftAffinity, trustack.PolicySoftAntiAffinity:
	default:
		return nil, trustack.Errorf(trustack.EINVALID, "Invalid input for field/attribute policies. %q is not one of affinity, anti-affinity, soft-affinity, soft-anti-affinity.", policy)
	}
	limits, err := s.Limits(ctx, c.ProjectID)
	if err != nil {
		return nil, err
	}
	g := &trustack.ServerGroup{ID: uuid.NewString(), Name: name, ProjectID: c.ProjectID, UserID: c.UserID, Policy: policy, Members: []string{}, CreatedAt: s.opts.Now().UTC()}
	return g, s.store.CreateServerGroup(ctx, g, limits[trustack.QuotaServerGroups])
}

// ServerGroup returns a group the caller may see.
func (s *Service) ServerGroup(ctx context.Context, c Caller, id string) (*trustack.ServerGroup, error) {
	g, err := s.store.ServerGroup(ctx, id)
	if err == nil && g.ProjectID != c.ProjectID && !c.Admin {
		err = trustack.Errorf(trustack.ENOTFOUND, "Instance group %s could not be found.", id)
	}
	return g, err
}

// ServerGroups returns the caller's project's groups, or every group for
// an admin asking for all projects.
func (s *Service) ServerGroups(ctx context.Context, c Caller, allProjects bool) ([]*trustack.ServerGroup, error) {
	if allProjects && c.Admin {
		return s.store.ServerGroups(ctx, "")
	}
	return s.store.ServerGroups(ctx, c.ProjectID)
}

// DeleteServerGroup deletes a group; its members keep running.
func (s *Service) DeleteServerGroup(ctx context.Context, c Caller, id string) error {
	if _, err := s.ServerGroup(ctx, c, id); err != nil {
		return err
	}
	return s.store.DeleteServerGroup(ctx, id)
}

// Quotas.

// Limits returns a project's quota limits: the defaults with the
// project's own on top.
func (s *Service) Limits(ctx context.Context, projectID string) (map[string]int, error) {
	set, err := s.store.Quotas(ctx, projectID)
	if err != nil {
		return nil, err
	}
	out := maps.Clone(trustack.DefaultQuotas)
	maps.Copy(out, set)
	return out, nil
}

// SetLimits sets quota limits of a project; unknown resources and limits
// below -1 are refused.
func (s *Service) SetLimits(ctx context.Context, projectID string, limits map[string]int) error {
	for r, n := range limits {
		if _, ok := trustack.DefaultQuotas[r]; !ok {
			return trustack.Errorf(trustack.EINVALID, "Bad key(s) %s in quota_set", r)
		}
		if n < -1 {
			return trustack.Errorf(trustack.EINVALID, "Quota limit %d for %s must be -1 or greater.", n, r)
		}
	}
	return s.store.SetQuotas(ctx, projectID, limits)
}

// ResetLimits returns a project to the default limits.
func (s *Service) ResetLimits(ctx context.Context, projectID string) error {
	return s.store.DeleteQuotas(ctx, projectID)
}

// Usage returns what a project uses of its quota.
func (s *Service) Usage(ctx context.Context, projectID string) (map[string]int, error) {
	return s.store.Usage(ctx, projectID)
}

// Instance actions.

// Actions lists a server's instance actions, newest first.
func (s *Service) Actions(ctx context.Context, c Caller, id string) ([]trustack.InstanceAction, error) {
	if _, err := s.Server(ctx, c, id); err != nil {
		return nil, err
	}
	return s.store.Actions(ctx, id)
}

// Action returns one instance action with its events.
func (s *Service) Action(ctx context.Context, c Caller, id, requestID string) (*trustack.InstanceAction, error) {
	if _, err := s.Server(ctx, c, id); err != nil {
		return nil, err
	}
	return s.store.Action(ctx, id, requestID)
}

// DefaultFlavors are Nova's classic flavors, with their classic IDs.
var DefaultFlavors = []trustack.Flavor{
	{ID: "1", Name: "m1.tiny", VCPUs: 1, RAM: 512, Disk: 1},
	{ID: "2", Name: "m1.small", VCPUs: 1, RAM: 2048, Disk: 20},
	{ID: "3", Name: "m1.medium", VCPUs: 2, RAM: 4096, Disk: 40},
	{ID: "4", Name: "m1.large", VCPUs: 4, RAM: 8192, Disk: 80},
	{ID: "5", Name: "m1.xlarge", VCPUs: 8, RAM: 16384, Disk: 160},
}

// EnsureFlavors creates the flavors that do not exist, by ID; an
// operator's changes to existing ones stay.
func (s *Service) EnsureFlavors(ctx context.Context, list []trustack.Flavor) error {
	for _, f := range list {
		if _, err := s.store.Flavor(ctx, f.ID); trustack.ErrorCode(err) != trustack.ENOTFOUND {
			if err != nil {
				return err
			}
			continue
		}
		f.Public, f.RXTXFactor = true, 1.0
		if err := s.CreateFlavor(ctx, &f); err != nil && trustack.ErrorCode(err) != trustack.ECONFLICT {
			return fmt.Errorf("create flavor %s: %w", f.Name, err)
		}
	}
	return nil
}
