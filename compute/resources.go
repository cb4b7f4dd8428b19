package compute

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"strings"
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

// ShareFlavor shares or stops sharing a private flavor with a project.
func (s *Service) ShareFlavor(ctx context.Context, id, projectID string, share bool) error {
	f, err := s.Flavor(ctx, id)
	if err != nil {
		return err
	}
	if f.Public {
		return trustack.Errorf(trustack.ECONFLICT, "Can not add access to a public flavor.")
	}
	if share {
		err := s.store.AddFlavorAccess(ctx, id, projectID)
		if trustack.ErrorCode(err) == trustack.ECONFLICT {
			return trustack.Errorf(trustack.ECONFLICT, "Flavor access already exists for flavor %s and project %s combination.", id, projectID)
		}
		return err
	}
	return s.store.RemoveFlavorAccess(ctx, id, projectID)
}

// Keypairs.

// CreateKeypair imports a public key (publicKey not "") or makes a new
// RSA key pair and returns its private key, which is not kept.
func (s *Service) CreateKeypair(ctx context.Context, c Caller, name, publicKey string) (*trustack.Keypair, string, error) {
	if err := checkKeypairName(name); err != nil {
		return nil, "", err
	}
	var private string
	if publicKey == "" {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, "", err
		}
		pub, err := ssh.NewPublicKey(&key.PublicKey)
		if err != nil {
			return nil, "", err
		}
		publicKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " Generated-by-Nova"
		private = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(publicKey))
	if err != nil {
		return nil, "", trustack.Errorf(trustack.EINVALID, "Keypair data is invalid: failed to generate fingerprint")
	}
	limits, err := s.Limits(ctx, c.ProjectID)
	if err != nil {
		return nil, "", err
	}
	k := &trustack.Keypair{Name: name, UserID: c.UserID, Type: "ssh", PublicKey: strings.TrimSpace(publicKey),
		Fingerprint: ssh.FingerprintLegacyMD5(pub), CreatedAt: s.opts.Now().UTC()}
	if err := s.store.CreateKeypair(ctx, k, limits[trustack.QuotaKeyPairs]); err != nil {
		return nil, "", err
	}
	return k, private, nil
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
