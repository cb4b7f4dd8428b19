package identity

import (
	"net/http"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/identity"
	"github.com/trustack/trustack/policy"
)

// Credentials (/v3/credentials), and EC2 credentials as Keystone's OS-EC2
// extension serves them (/v3/users/{user_id}/credentials/OS-EC2): the
// same credentials of type ec2, named by their access keys.

type credentialFields struct {
	UserID    openstack.Optional[string] `json:"user_id"`
	ProjectID openstack.Optional[string] `json:"project_id"`
	Type      openstack.Optional[string] `json:"type"`
	Blob      openstack.Optional[string] `json:"blob"`
}

func (f *credentialFields) apply(c *trustack.Credential) error {
	f.ProjectID.ApplyNullable(&c.ProjectID)
	for _, field := range []struct {
		v    openstack.Optional[string]
		dst  *string
		name string
	}{{f.UserID, &c.UserID, "credential.user_id"}, {f.Type, &c.Type, "credential.type"}, {f.Blob, &c.Blob, "credential.blob"}} {
		if err := field.v.Apply(field.dst, field.name); err != nil {
			return err
		}
	}
	return nil
}

// credentialTarget is a credential as Keystone's policy sees it.
func credentialTarget(c *trustack.Credential) policy.Target {
	return policy.Target{"target.credential.user_id": c.UserID, "target.credential.project_id": c.ProjectID, "target.credential.type": c.Type}
}

func (h *handler) credential(c *trustack.Credential) object {
	return withExtra(c.Extra, object{
		"id": c.ID, "user_id": c.UserID, "project_id": nullable(c.ProjectID), "type": c.Type, "blob": c.Blob,
		"links": h.self("credentials", c.ID),
	})
}

func (h *handler) listCredentials(w http.ResponseWriter, r *http.Request) error {
	caller := policy.Target{"target.credential.user_id": openstack.TokenOf(r).User.ID}
	if err := h.api.Authorize(r, "identity:list_credentials", caller); err != nil {
		return err
	}
	q := r.URL.Query()
	list, err := h.svc.Credentials(r.Context(), trustack.CredentialFilter{UserID: q.Get("user_id"), Type: q.Get("type")})
	if err != nil {
		return err
	}
	// As Keystone: each credential is shown only to who may get it, so
	// that a user sees their own.
	var out []object
	for _, c := range list {
		if h.api.Allowed(r, "identity:get_credential", credentialTarget(c)) {
			out = append(out, h.credential(c))
		}
	}
	h.collection(w, r, "credentials", out)
	return nil
}

func (h *handler) createCredential(w http.ResponseWriter, r *http.Request) error {
	var f credentialFields
	extra, err := h.decodeEntity(r, "credential", &f)
	if err != nil {
		return err
	}
	for _, required := range []struct {
		v    openstack.Optional[string]
		name string
	}{{f.Blob, "blob"}, {f.Type, "type"}, {f.UserID, "user_id"}} {
		if !required.v.Set {
			return trustack.Errorf(trustack.EINVALID, "Invalid input for field 'credential': '%s' is a required property.", required.name)
		}
	}
	c := &trustack.Credential{Extra: extra}
	if err := f.apply(c); err != nil {
		return err
	}
	if err := h.api.Authorize(r, "identity:create_credential", credentialTarget(c)); err != nil {
		return err
	}
	if err := h.svc.CreateCredential(r.Context(), c); err != nil {
		return err
	}
	return created(w, "credential", h.credential(c))
}

// credentialFor returns the credential of the URL, if the caller may
// apply rule to it.
func (h *handler) credentialFor(r *http.Request, rule string) (*trustack.Credential, error) {
	c, err := h.svc.Credential(r.Context(), r.PathValue("credential_id"))
	if err != nil {
		return nil, err
	}
	return c, h.api.Authorize(r, rule, credentialTarget(c))
}

func (h *handler) getCredential(w http.ResponseWriter, r *http.Request) error {
	c, err := h.credentialFor(r, "identity:get_credential")
	if err != nil {
		return err
	}
	return ok(w, "credential", h.credential(c))
}

func (h *handler) updateCredential(w http.ResponseWriter, r *http.Request) error {
	c, err := h.credentialFor(r, "identity:update_credential")
	if err != nil {
		return err
	}
	var f credentialFields
	extra, err := h.decodeEntity(r, "credential", &f)
	if err != nil {
		return err
	}
	c, err = h.svc.UpdateCredential(r.Context(), c.ID, func(c *trustack.Credential) error {
		mergeExtra(&c.Extra, extra)
		if err := f.apply(c); err != nil {
			return err
		}
		// As Keystone: the caller must also be allowed the credential as
		// it will be, so that no one gives theirs to another user.
		return h.api.Authorize(r, "identity:update_credential", credentialTarget(c))
	})
	if err != nil {
		return err
	}
	return ok(w, "credential", h.credential(c))
}

func (h *handler) deleteCredential(w http.ResponseWriter, r *http.Request) error {
	c, err := h.credentialFor(r, "identity:delete_credential")
	if err != nil {
		return err
	}
	return noContent(w, h.svc.DeleteCredential(r.Context(), c.ID))
}

// OS-EC2.

// ec2Target is the user of an OS-EC2 URL, as the owner of the credentials
// it names, for Keystone's rules.
func ec2Target(r *http.Request) policy.Target {
	userID := r.PathValue("user_id")
	return policy.Target{"user_id": userID, "target.credential.user_id": userID}
}

func (h *handler) ec2Credential(c *trustack.Credential) (object, error) {
	blob, err := identity.ParseEC2Blob(c.Blob)
	if err != nil {
		return nil, err
	}
	return object{
		"user_id": c.UserID, "tenant_id": c.ProjectID, "access": blob.Access, "secret": blob.Secret, "trust_id": blob.TrustID,
		"links": h.self("users", c.UserID, "credentials", "OS-EC2", blob.Access),
	}, nil
}

func (h *handler) createEC2Credential(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:ec2_create_credential", ec2Target(r)); err != nil {
		return err
	}
	var body struct {
		TenantID string `json:"tenant_id"`
	}
	if err := h.dec.Decode(r, &body); err != nil {
		return err
	}
	c, err := h.svc.CreateEC2Credential(r.Context(), r.PathValue("user_id"), body.TenantID)
	if err != nil {
		return err
	}
	o, err := h.ec2Credential(c)
	if err != nil {
		return err
	}
	return created(w, "credential", o)
}

func (h *handler) listEC2Credentials(w http.ResponseWriter, r *http.Request) error {
	if err := h.api.Authorize(r, "identity:ec2_list_credentials", ec2Target(r)); err != nil {
		return err
	}
	userID := r.PathValue("user_id")
	if _, err := h.svc.User(r.Context(), userID); err != nil {
		return err
	}
	list, err := h.svc.Credentials(r.Context(), trustack.CredentialFilter{UserID: userID, Type: trustack.CredentialEC2})
	if err != nil {
		return err
	}
	out := make([]object, len(list))
	for i, c := range list {
		if out[i], err = h.ec2Credential(c); err != nil {
			return err
		}
	}
	h.collection(w, r, "credentials", out)
	return nil
}

// ec2CredentialFor returns the EC2 credential of the URL, named by its
// access key, if the caller may apply rule to it: one of another user is
// not found.
func (h *handler) ec2CredentialFor(r *http.Request, rule string) (*trustack.Credential, error) {
	if err := h.api.Authorize(r, rule, ec2Target(r)); err != nil {
		return nil, err
	}
	access := r.PathValue("credential_id")
	list, err := h.svc.Credentials(r.Context(), trustack.CredentialFilter{UserID: r.PathValue("user_id"), Type: trustack.CredentialEC2, Access: access})
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, trustack.Errorf(trustack.ENOTFOUND, "Could not find credential: %s.", access)
	}
	return list[0], nil
}

func (h *handler) getEC2Credential(w http.ResponseWriter, r *http.Request) error {
	c, err := h.ec2CredentialFor(r, "identity:ec2_get_credential")
	if err != nil {
		return err
	}
	o, err := h.ec2Credential(c)
	if err != nil {
		return err
	}
	return ok(w, "credential", o)
}

func (h *handler) deleteEC2Credential(w http.ResponseWriter, r *http.Request) error {
	c, err := h.ec2CredentialFor(r, "identity:ec2_delete_credential")
	if err != nil {
		return err
	}
	return noContent(w, h.svc.DeleteCredential(r.Context(), c.ID))
}
