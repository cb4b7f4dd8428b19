package trust

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/api/openstack"
	"github.com/trustack/trustack/attest"
)

// The operators' calls of attestation, /os-trustack-whitelists,
// /os-trustack-attestations and /os-trustack-approved-eks: the
// white-lists hosts are held to, what the verifier concluded of each
// host, and the TPMs approved although no manufacturer CA vouches for
// them. Bodies are wrapped as the other os-trustack-* calls' are
// ({"whitelist": {...}}); a create answers 201, a delete 204. In a cloud
// whose hosts do not attest, every call answers 501.

// Attestation is what the compute API needs of the attestation verifier;
// attest.Service is one.
type Attestation interface {
	CreateWhitelist(ctx context.Context, wl *trustack.Whitelist) error
	PutWhitelist(ctx context.Context, wl *trustack.Whitelist) error
	Whitelist(ctx context.Context, name string) (*trustack.Whitelist, error)
	Whitelists(ctx context.Context) ([]*trustack.Whitelist, error)
	DeleteWhitelist(ctx context.Context, name string) error
	WhitelistFromHost(ctx context.Context, name, host string) (*trustack.Whitelist, error)

	HostAttestations(ctx context.Context) ([]*trustack.HostAttestation, error)
	HostAttestation(ctx context.Context, host string) (*trustack.HostAttestation, error)
	Events(ctx context.Context, host string, limit int) ([]trustack.AttestationEvent, error)
	Forget(ctx context.Context, host string) error

	ApproveEK(ctx context.Context, fingerprint, comment string) (*trustack.ApprovedEK, error)
	ApprovedEKs(ctx context.Context) ([]*trustack.ApprovedEK, error)
	RevokeEK(ctx context.Context, fingerprint string) error
}

var _ Attestation = (*attest.Service)(nil)

// maxWhitelistBody bounds the body of a white-list's create or import:
// a white-list taken from a host lists every file it ran, far more than
// the API's usual bound allows. Only operators get this far.
const maxWhitelistBody = 32 << 20

func (h *handler) attestationRoutes(v string) {
	a := h.api
	a.Private("GET "+v+"/os-trustack-whitelists", h.listWhitelists)
	a.Private("POST "+v+"/os-trustack-whitelists", h.createWhitelist)
	a.Private("GET "+v+"/os-trustack-whitelists/{name}", h.showWhitelist)
	a.Private("PUT "+v+"/os-trustack-whitelists/{name}", h.putWhitelist)
	a.Private("DELETE "+v+"/os-trustack-whitelists/{name}", h.deleteWhitelist)

	a.Private("GET "+v+"/os-trustack-attestations", h.listAttestations)
	a.Private("GET "+v+"/os-trustack-attestations/{host}", h.showAttestation)
	a.Private("GET "+v+"/os-trustack-attestations/{host}/events", h.listAttestationEvents)
	a.Private("DELETE "+v+"/os-trustack-attestations/{host}", h.forgetHost)

	a.Private("GET "+v+"/os-trustack-approved-eks", h.listApprovedEKs)
	a.Private("POST "+v+"/os-trustack-approved-eks", h.approveEK)
	a.Private("DELETE "+v+"/os-trustack-approved-eks/{fingerprint}", h.revokeEK)
}

// attestationRule is the policy rule of every attestation call.
const attestationRule = "trustack:attestation"

// errAttestationDisabled answers the attestation calls of a cloud whose
// hosts do not attest.
var errAttestationDisabled = &openstack.HTTPError{Status: http.StatusNotImplemented,
	Message: "Attestation is disabled in this cloud ([attestation] enabled = no)."}

// attestation checks that the caller may manage attestation, with a
// message that says who may, and returns the verifier; 501 if the cloud
// has none.
func (h *handler) attestation(r *http.Request) (Attestation, error) {
	if err := h.api.Authorize(r, attestationRule, nil); err != nil {
		if trustack.ErrorCode(err) == trustack.EFORBIDDEN {
			return nil, trustack.Errorf(trustack.EFORBIDDEN, "You are not authorized to manage attestation (policy rule %s: operators only by default).", attestationRule)
		}
		return nil, err
	}
	if h.attest == nil {
		return nil, errAttestationDisabled
	}
	return h.attest, nil
}

// rfc3339OrNull renders a time as the os-trustack-* calls do, null when
// zero.
func rfc3339OrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

// White-lists.

// whitelist renders a white-list whole: the form the CLI exports and
// imports.
func whitelist(wl *trustack.Whitelist) object {
	files := wl.Files
	if files == nil {
		files = map[string][]string{}
	}
	return object{"name": wl.Name, "files": files, "exclude": orEmpty(wl.Exclude), "boot_aggregate": wl.BootAggregate}
}

// whitelistSummary renders a white-list in a list: how many files it
// allows rather than which.
func whitelistSummary(wl *trustack.Whitelist) object {
	return object{"name": wl.Name, "file_count": len(wl.Files), "exclude": orEmpty(wl.Exclude), "boot_aggregate": wl.BootAggregate}
}

func orEmpty(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

// whitelistBody is a white-list in a request: given whole, or, for a
// create, taken from a known-good host.
type whitelistBody struct {
	Name          string              `json:"name"`
	Files         map[string][]string `json:"files"`
	Exclude       []string            `json:"exclude"`
	BootAggregate string              `json:"boot_aggregate"`
	FromHost      string              `json:"from_host"`
}

func (b *whitelistBody) whitelist() *trustack.Whitelist {
	files := b.Files
	if files == nil {
		files = map[string][]string{}
	}
	return &trustack.Whitelist{Name: b.Name, Files: files, Exclude: b.Exclude, BootAggregate: b.BootAggregate}
}

// decodeWhitelist decodes {"whitelist": {...}}, up to maxWhitelistBody
// (or the API's bound, if larger).
func (h *handler) decodeWhitelist(r *http.Request) (*whitelistBody, error) {
	dec := openstack.Decoder{MaxBodySize: max(h.cfg.MaxBodySize, maxWhitelistBody)}
	var body map[string]*whitelistBody
	if err := dec.Decode(r, &body); err != nil {
		return nil, err
	}
	if body["whitelist"] == nil {
		return nil, required("whitelist")
	}
	return body["whitelist"], nil
}

func (h *handler) listWhitelists(w http.ResponseWriter, r *http.Request) error {
	att, err := h.attestation(r)
	if err != nil {
		return err
	}
	list, err := att.Whitelists(r.Context())
	return listed(w, "whitelists", list, err, whitelistSummary)
}

// createWhitelist adds a white-list given whole, or taken from what a
// known-good host runs (from_host), and answers with all of it.
func (h *handler) createWhitelist(w http.ResponseWriter, r *http.Request) error {
	att, err := h.attestation(r)
	if err != nil {
		return err
	}
	b, err := h.decodeWhitelist(r)
	if err != nil {
		return err
	}
	if b.Name == "" {
		return required("name")
	}
	if b.FromHost != "" {
		if b.Files != nil || b.Exclude != nil || b.BootAggregate != "" {
			return invalid("from_host", "Give either from_host, to take the white-list from a known-good host, or files, exclude and boot_aggregate, not both.")
		}
		wl, err := att.WhitelistFromHost(r.Context(), b.Name, b.FromHost)
		if err != nil {
			return err
		}
		return created(w, object{"whitelist": whitelist(wl)})
	}
	wl := b.whitelist()
	if err := att.CreateWhitelist(r.Context(), wl); err != nil {
		return err
	}
	return created(w, object{"whitelist": whitelist(wl)})
}

func (h *handler) showWhitelist(w http.ResponseWriter, r *http.Request) error {
	att, err := h.attestation(r)
	if err != nil {
		return err
	}
	wl, err := att.Whitelist(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return ok(w, object{"whitelist": whitelist(wl)})
}

// putWhitelist imports a white-list: it replaces the one of the path's
// name, or adds it. The body's name, if given, must be the path's.
func (h *handler) putWhitelist(w http.ResponseWriter, r *http.Request) error {
	att, err := h.attestation(r)
	if err != nil {
		return err
	}
	b, err := h.decodeWhitelist(r)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if b.Name != "" && b.Name != name {
		return invalid("name", "The white-list in the body is %s, not %s as in the URL.", b.Name, name)
	}
	if b.FromHost != "" {
		return invalid("from_host", "A white-list is taken from a host only when it is created (POST /os-trustack-whitelists).")
	}
	b.Name = name
	wl := b.whitelist()
	if err := att.PutWhitelist(r.Context(), wl); err != nil {
		return err
	}
	return ok(w, object{"whitelist": whitelist(wl)})
}

func (h *handler) deleteWhitelist(w http.ResponseWriter, r *http.Request) error {
	att, err := h.attestation(r)
	if err != nil {
		return err
	}
	if err := att.DeleteWhitelist(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	return noContent(w)
}

// Hosts' attestations.

// Attestation states beyond the verdicts': a host registered and not
// attested yet, and one put out for failing attestation.
const (
	stateRegistered = "registered"
	stateRevoked    = "revoked"
)

// attestationState is a host's state in a word: its latest verdict, or
// revoked, or registered before its first verdict.
func attestationState(a *trustack.HostAttestation) string {
	switch {
	case a.Revoked:
		return stateRevoked
	case a.Verdict.State == "":
		return stateRegistered
	}
	return a.Verdict.State
}

func hostAttestation(a *trustack.HostAttestation) object {
	var fingerprint string
	if len(a.EKCert) > 0 {
		fingerprint = attest.Fingerprint(a.EKCert)
	}
	return object{
		"host": a.Host, "state": attestationState(a), "whitelist": a.Verdict.Whitelist, "mode": a.Mode, "cid": a.CID,
		"registered_at": rfc3339OrNull(a.RegisteredAt), "attested_at": rfc3339OrNull(a.Verdict.At), "attested_by": a.Verdict.By,
		"failing_since": rfc3339OrNull(a.FailingSince), "reasons": orEmpty(a.Verdict.Reasons), "ek_fingerprint": fingerprint,
	}
}

func (h *handler) listAttestations(w http.ResponseWriter, r *http.Request) error {
	att, err := h.attestation(r)
	if err != nil {
		return err
	}
	list, err := att.HostAttestations(r.Context())
	return listed(w, "attestations", list, err, hostAttestation)
}

func (h *handler) showAttestation(w http.ResponseWriter, r *http.Request) error {
	att, err := h.attestation(r)
	if err != nil {
		return err
	}
	a, err := att.HostAttestation(r.Context(), r.PathValue("host"))
	if err != nil {
		return err
	}
	return ok(w, object{"attestation": hostAttestation(a)})
}

func attestationEvent(e trustack.AttestationEvent) object {
	return object{"at": rfc3339OrNull(e.At), "kind": e.Kind, "message": e.Message}
}

// listAttestationEvents lists a host's latest events, oldest first: the
// last limit of them (all without limit). A host refused at registration
// has events but no record.
func (h *handler) listAttestationEvents(w http.ResponseWriter, r *http.Request) error {
	att, err := h.attestation(r)
	if err != nil {
		return err
	}
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 0 {
			return trustack.Errorf(trustack.EINVALID, "Invalid value %q for query parameter limit: want a whole number of events, 0 for all.", v)
		}
	}
	list, err := att.Events(r.Context(), r.PathValue("host"), limit)
	return listed(w, "events", list, err, attestationEvent)
}

// forgetHost removes a host's record and events, freeing its name for
// another TPM.
func (h *handler) forgetHost(w http.ResponseWriter, r *http.Request) error {
	att, err := h.attestation(r)
	if err != nil {
		return err
	}
	if err := att.Forget(r.Context(), r.PathValue("host")); err != nil {
		return err
	}
	return noContent(w)
}

// Approved EKs.

func approvedEK(ek *trustack.ApprovedEK) object {
	return object{"fingerprint": ek.Fingerprint, "comment": ek.Comment, "approved_at": rfc3339OrNull(ek.ApprovedAt)}
}

func (h *handler) listApprovedEKs(w http.ResponseWriter, r *http.Request) error {
	att, err := h.attestation(r)
	if err != nil {
		return err
	}
	list, err := att.ApprovedEKs(r.Context())
	return listed(w, "approved_eks", list, err, approvedEK)
}

// approveEK approves an EK by its certificate's fingerprint; approving
// one approved already replaces its comment.
func (h *handler) approveEK(w http.ResponseWriter, r *http.Request) error {
	att, err := h.attestation(r)
	if err != nil {
		return err
	}
	b, err := decodeWrapped[struct {
		Fingerprint string `json:"fingerprint"`
		Comment     string `json:"comment"`
	}](h, r, "approved_ek")
	if err != nil {
		return err
	}
	if b.Fingerprint == "" {
		return required("fingerprint")
	}
	ek, err := att.ApproveEK(r.Context(), b.Fingerprint, b.Comment)
	if err != nil {
		return err
	}
	return created(w, object{"approved_ek": approvedEK(ek)})
}

func (h *handler) revokeEK(w http.ResponseWriter, r *http.Request) error {
	att, err := h.attestation(r)
	if err != nil {
		return err
	}
	if err := att.RevokeEK(r.Context(), r.PathValue("fingerprint")); err != nil {
		return err
	}
	return noContent(w)
}
