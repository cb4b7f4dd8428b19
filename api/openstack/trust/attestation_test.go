package trust_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustack/trustack"
	computeapi "github.com/trustack/trustack/api/openstack/compute"
	"github.com/trustack/trustack/api/openstack/trust"
	"github.com/trustack/trustack/attest"
	"github.com/trustack/trustack/policy"
)

// fakeAttestation is a verifier without agents: the real one attests
// hosts over the bus with their TPMs, which the API's tests need not.
// White-lists are checked as the verifier checks them; a white-list
// from a host is what the host was set to run.
type fakeAttestation struct {
	mu         sync.Mutex
	whitelists map[string]*trustack.Whitelist
	hosts      map[string]*trustack.HostAttestation
	events     map[string][]trustack.AttestationEvent
	eks        map[string]*trustack.ApprovedEK
	runs       map[string]map[string][]string // files by host, for WhitelistFromHost
	now        time.Time
}

var _ trust.Attestation = (*fakeAttestation)(nil)

func (f *fakeAttestation) CreateWhitelist(_ context.Context, wl *trustack.Whitelist) error {
	if err := attest.CheckWhitelist(wl); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.whitelists[wl.Name] != nil {
		return trustack.Errorf(trustack.ECONFLICT, "White-list %s already exists.", wl.Name)
	}
	f.whitelists[wl.Name] = wl
	return nil
}

func (f *fakeAttestation) PutWhitelist(_ context.Context, wl *trustack.Whitelist) error {
	if err := attest.CheckWhitelist(wl); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.whitelists[wl.Name] = wl
	return nil
}

func (f *fakeAttestation) Whitelist(_ context.Context, name string) (*trustack.Whitelist, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if wl := f.whitelists[name]; wl != nil {
		return wl, nil
	}
	return nil, trustack.Errorf(trustack.ENOTFOUND, "White-list %s does not exist.", name)
}

func (f *fakeAttestation) Whitelists(context.Context) ([]*trustack.Whitelist, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*trustack.Whitelist
	for _, name := range slices.Sorted(maps.Keys(f.whitelists)) {
		out = append(out, f.whitelists[name])
	}
	return out, nil
}

func (f *fakeAttestation) DeleteWhitelist(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.whitelists[name] == nil {
		return trustack.Errorf(trustack.ENOTFOUND, "White-list %s does not exist.", name)
	}
	delete(f.whitelists, name)
	return nil
}

func (f *fakeAttestation) WhitelistFromHost(ctx context.Context, name, host string) (*trustack.Whitelist, error) {
	f.mu.Lock()
	files, ok := f.runs[host]
	f.mu.Unlock()
	if !ok {
		return nil, trustack.Errorf(trustack.ENOTFOUND, "Host %s has not registered for attestation.", host)
	}
	wl := &trustack.Whitelist{Name: name, Files: files, BootAggregate: "sha256:" + strings.Repeat("b", 64)}
	return wl, f.CreateWhitelist(ctx, wl)
}

func (f *fakeAttestation) HostAttestations(context.Context) ([]*trustack.HostAttestation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*trustack.HostAttestation
	for _, name := range slices.Sorted(maps.Keys(f.hosts)) {
		out = append(out, f.hosts[name])
	}
	return out, nil
}

func (f *fakeAttestation) HostAttestation(_ context.Context, host string) (*trustack.HostAttestation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a := f.hosts[host]; a != nil {
		return a, nil
	}
	return nil, trustack.Errorf(trustack.ENOTFOUND, "Host %s has not registered for attestation.", host)
}

func (f *fakeAttestation) Events(_ context.Context, host string, limit int) ([]trustack.AttestationEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	list := f.events[host]
	if limit > 0 && len(list) > limit {
		list = list[len(list)-limit:]
	}
	return list, nil
}

func (f *fakeAttestation) Forget(_ context.Context, host string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hosts[host] == nil {
		return trustack.Errorf(trustack.ENOTFOUND, "Host %s has not registered for attestation.", host)
	}
	delete(f.hosts, host)
	delete(f.events, host)
	return nil
}

func (f *fakeAttestation) ApproveEK(_ context.Context, fingerprint, comment string) (*trustack.ApprovedEK, error) {
	if len(fingerprint) != 64 {
		return nil, trustack.Errorf(trustack.EINVALID, "An EK fingerprint is the SHA-256 of its certificate in 64 hex digits, not %q.", fingerprint)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ek := &trustack.ApprovedEK{Fingerprint: fingerprint, Comment: comment, ApprovedAt: f.now}
	f.eks[fingerprint] = ek
	return ek, nil
}

func (f *fakeAttestation) ApprovedEKs(context.Context) ([]*trustack.ApprovedEK, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*trustack.ApprovedEK
	for _, fp := range slices.Sorted(maps.Keys(f.eks)) {
		out = append(out, f.eks[fp])
	}
	return out, nil
}

func (f *fakeAttestation) RevokeEK(_ context.Context, fingerprint string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.eks[fingerprint] == nil {
		return trustack.Errorf(trustack.ENOTFOUND, "EK %s is not approved.", fingerprint)
	}
	delete(f.eks, fingerprint)
	return nil
}

// Test data: digests, an EK certificate and times.
var (
	digestA      = "sha256:" + strings.Repeat("a", 64)
	digestC      = "sha256:" + strings.Repeat("c", 64)
	ekCert       = []byte("an EK certificate")
	ekPrint      = attest.Fingerprint(ekCert)
	attestedAt   = time.Date(2025, 3, 4, 5, 6, 7, 0, time.FixedZone("CET", 3600))
	registeredAt = time.Date(2025, 3, 4, 4, 0, 0, 0, time.UTC)
)

// newFakeAttestation returns a verifier that knows four hosts, one in
// each state, with events of compute-1.
func newFakeAttestation() *fakeAttestation {
	host := func(name, state string, reasons ...string) *trustack.HostAttestation {
		a := &trustack.HostAttestation{Host: name, CID: "cid-" + name, RegisteredAt: registeredAt, EKCert: ekCert, Mode: trustack.MeasuredByKernel}
		if state != "" {
			a.Verdict = trustack.Verdict{State: state, Reasons: reasons, Whitelist: "gold", At: attestedAt, By: "controller-1"}
		}
		if state != "" && state != trustack.VerdictTrusted {
			a.FailingSince = attestedAt
		}
		return a
	}
	revoked := host("compute-4", trustack.VerdictUntrusted, "File /usr/bin/evil is not in white-list gold.")
	revoked.Revoked, revoked.CID = true, ""
	return &fakeAttestation{
		whitelists: map[string]*trustack.Whitelist{},
		hosts: map[string]*trustack.HostAttestation{
			"compute-1": host("compute-1", trustack.VerdictTrusted),
			"compute-2": host("compute-2", trustack.VerdictUnreachable, "The host did not answer the attestation request: timeout."),
			"compute-3": host("compute-3", ""),
			"compute-4": revoked,
		},
		events: map[string][]trustack.AttestationEvent{"compute-1": {
			{Host: "compute-1", At: registeredAt, Kind: trustack.EventRegistered, Message: "Host compute-1 registered its TPM."},
			{Host: "compute-1", At: attestedAt, Kind: trustack.EventTrusted, Message: "Host compute-1 is trusted (white-list gold)."},
		}},
		eks:  map[string]*trustack.ApprovedEK{},
		runs: map[string]map[string][]string{"compute-1": {"/usr/bin/qemu-system-x86_64": {digestA}}},
		now:  registeredAt,
	}
}

// newAttestationAPI serves the compute API with att as its verifier (nil
// for a cloud whose hosts do not attest).
func newAttestationAPI(t *testing.T, att trust.Attestation) *httptest.Server {
	t.Helper()
	enforcer, err := policy.New(append(computeapi.Policy(), trust.Policy()...), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := throughCompute(enforcer, trust.New(nil, validator{}, enforcer, trust.Config{Attestation: att}, slog.New(slog.NewTextHandler(io.Discard, nil))))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// apiCase is a call and what its answer must be.
type apiCase struct {
	token, method, path, body string
	status                    int
	says                      []string // in the body
}

// run makes the calls in order and checks their answers.
func run(t *testing.T, srv *httptest.Server, cases []apiCase) {
	t.Helper()
	for _, tc := range cases {
		status, body := call(t, srv, tc.token, tc.method, tc.path, tc.body)
		if status != tc.status {
			t.Errorf("%s %s as %q: got status %d, want %d: %s", tc.method, tc.path, tc.token, status, tc.status, body)
			continue
		}
		if status != http.StatusNoContent && !json.Valid([]byte(body)) {
			t.Errorf("%s %s as %q: the body is not JSON: %s", tc.method, tc.path, tc.token, body)
		}
		for _, w := range tc.says {
			if !strings.Contains(body, w) {
				t.Errorf("%s %s as %q: got body %s, want it to contain %s", tc.method, tc.path, tc.token, body, w)
			}
		}
	}
}

// TestAttestationAPI runs through every attestation call, in order, as an
// operator and as a member, checking statuses and what the bodies say.
func TestAttestationAPI(t *testing.T) {
	srv := newAttestationAPI(t, newFakeAttestation())
	gold := fmt.Sprintf(`{"whitelist": {"name": "gold", "files": {"/usr/bin/qemu": [%q]}, "exclude": ["/var/log/**"], "boot_aggregate": %q}}`, digestA, digestC)
	run(t, srv, []apiCase{
		// White-lists.
		{"admin", "POST", "/os-trustack-whitelists", gold, 201,
			[]string{fmt.Sprintf(`{"whitelist":{"boot_aggregate":%q,"exclude":["/var/log/**"],"files":{"/usr/bin/qemu":[%q]},"name":"gold"}}`, digestC, digestA)}},
		{"admin", "POST", "/os-trustack-whitelists", gold, 409, []string{"conflictingRequest", "gold"}},
		{"admin", "POST", "/os-trustack-whitelists", `{"whitelist": {"name": "bad", "files": {"/usr/bin/qemu": ["md5:00"]}}}`, 400, []string{"badRequest", "ALGO:HEX"}},
		{"admin", "POST", "/os-trustack-whitelists", `{"whitelist": {"name": "bad", "files": {"usr/bin/qemu": [` + fmt.Sprintf("%q", digestA) + `]}}}`, 400, []string{"absolute"}},
		{"admin", "POST", "/os-trustack-whitelists", `{"whitelist": {"files": {}}}`, 400, []string{"'name'"}},
		{"admin", "POST", "/os-trustack-whitelists", `{}`, 400, []string{"'whitelist'"}},
		{"admin", "POST", "/os-trustack-whitelists", `{"whitelist": {"name": "x", "files": []}}`, 400, []string{"files"}},
		{"admin", "POST", "/os-trustack-whitelists", `{"whitelist": `, 400, []string{"Malformed"}},
		{"admin", "POST", "/os-trustack-whitelists", `{"whitelist": {"name": "x", "from_host": "compute-1", "exclude": ["/tmp/**"]}}`, 400, []string{"from_host"}},
		{"admin", "POST", "/os-trustack-whitelists", `{"whitelist": {"name": "base", "from_host": "compute-1"}}`, 201,
			[]string{`"name":"base"`, fmt.Sprintf(`"files":{"/usr/bin/qemu-system-x86_64":[%q]}`, digestA), `"exclude":[]`, `"boot_aggregate":"sha256:bbbb`}},
		{"admin", "POST", "/os-trustack-whitelists", `{"whitelist": {"name": "x", "from_host": "compute-9"}}`, 404, []string{"itemNotFound", "compute-9"}},
		{"p1", "POST", "/os-trustack-whitelists", gold, 403, []string{"forbidden", "trustack:attestation"}},
		{"p1", "GET", "/os-trustack-whitelists", "", 403, []string{"trustack:attestation"}},
		{"admin", "GET", "/os-trustack-whitelists", "", 200,
			[]string{`{"whitelists":[{"boot_aggregate":"sha256:bbbb`, `"file_count":1,"name":"base"}`, fmt.Sprintf(`{"boot_aggregate":%q,"exclude":["/var/log/**"],"file_count":1,"name":"gold"}`, digestC)}},
		{"admin", "GET", "/os-trustack-whitelists/gold", "", 200, []string{fmt.Sprintf(`"files":{"/usr/bin/qemu":[%q]}`, digestA)}},
		{"admin", "GET", "/os-trustack-whitelists/nope", "", 404, []string{"nope"}},
		{"admin", "PUT", "/os-trustack-whitelists/gold", gold, 200, []string{`"name":"gold"`}},
		{"admin", "PUT", "/os-trustack-whitelists/silver", gold, 400, []string{"gold", "silver"}},
		{"admin", "PUT", "/os-trustack-whitelists/silver", fmt.Sprintf(`{"whitelist": {"files": {"/bin/sh": [%q, %q]}}}`, digestA, digestC), 200,
			[]string{fmt.Sprintf(`{"whitelist":{"boot_aggregate":"","exclude":[],"files":{"/bin/sh":[%q,%q]},"name":"silver"}}`, digestA, digestC)}},
		{"admin", "PUT", "/os-trustack-whitelists/silver", `{"whitelist": {"from_host": "compute-1"}}`, 400, []string{"from_host"}},
		{"admin", "PUT", "/os-trustack-whitelists/silver", `{"whitelist": {"exclude": ["var/log"]}}`, 400, []string{"exclude"}},
		{"admin", "GET", "/os-trustack-whitelists/silver", "", 200, []string{"/bin/sh"}},
		{"p1", "PUT", "/os-trustack-whitelists/silver", gold, 403, nil},
		{"p1", "DELETE", "/os-trustack-whitelists/silver", "", 403, nil},
		{"admin", "DELETE", "/os-trustack-whitelists/silver", "", 204, nil},
		{"admin", "DELETE", "/os-trustack-whitelists/silver", "", 404, []string{"silver"}},

		// Hosts' attestations.
		{"admin", "GET", "/os-trustack-attestations", "", 200, []string{
			`{"attestations":[{`,
			fmt.Sprintf(`{"attested_at":"2025-03-04T04:06:07Z","attested_by":"controller-1","cid":"cid-compute-1","ek_fingerprint":%q,"failing_since":null,"host":"compute-1","mode":"kernel","reasons":[],"registered_at":"2025-03-04T04:00:00Z","state":"trusted","whitelist":"gold"}`, ekPrint),
			`"failing_since":"2025-03-04T04:06:07Z","host":"compute-2","mode":"kernel","reasons":["The host did not answer the attestation request: timeout."]`, `"state":"unreachable"`,
			`{"attested_at":null,"attested_by":"","cid":"cid-compute-3",`, `"host":"compute-3","mode":"kernel","reasons":[],"registered_at":"2025-03-04T04:00:00Z","state":"registered","whitelist":""}`,
			`"cid":"","ek_fingerprint"`, `"host":"compute-4","mode":"kernel","reasons":["File /usr/bin/evil is not in white-list gold."],"registered_at":"2025-03-04T04:00:00Z","state":"revoked"`,
		}},
		{"admin", "GET", "/os-trustack-attestations/compute-2", "", 200, []string{`{"attestation":{`, `"state":"unreachable"`, `"whitelist":"gold"`}},
		{"admin", "GET", "/os-trustack-attestations/compute-9", "", 404, []string{"compute-9"}},
		{"p1", "GET", "/os-trustack-attestations", "", 403, []string{"trustack:attestation"}},
		{"p1", "GET", "/os-trustack-attestations/compute-1", "", 403, nil},
		{"admin", "GET", "/os-trustack-attestations/compute-1/events", "", 200, []string{
			`{"events":[{"at":"2025-03-04T04:00:00Z","kind":"registered","message":"Host compute-1 registered its TPM."},{"at":"2025-03-04T04:06:07Z","kind":"trusted",`}},
		{"admin", "GET", "/os-trustack-attestations/compute-1/events?limit=1", "", 200, []string{`{"events":[{"at":"2025-03-04T04:06:07Z","kind":"trusted","message":"Host compute-1 is trusted (white-list gold)."}]}`}},
		{"admin", "GET", "/os-trustack-attestations/compute-1/events?limit=-1", "", 400, []string{"limit"}},
		{"admin", "GET", "/os-trustack-attestations/compute-1/events?limit=all", "", 400, []string{"limit"}},
		{"admin", "GET", "/os-trustack-attestations/compute-9/events", "", 200, []string{`{"events":[]}`}},
		{"p1", "GET", "/os-trustack-attestations/compute-1/events", "", 403, nil},
		{"p1", "DELETE", "/os-trustack-attestations/compute-1", "", 403, nil},
		{"admin", "DELETE", "/os-trustack-attestations/compute-1", "", 204, nil},
		{"admin", "DELETE", "/os-trustack-attestations/compute-1", "", 404, []string{"compute-1"}},
		{"admin", "GET", "/os-trustack-attestations/compute-1", "", 404, nil},
		{"admin", "GET", "/os-trustack-attestations/compute-1/events", "", 200, []string{`{"events":[]}`}},

		// Approved EKs.
		{"admin", "POST", "/os-trustack-approved-eks", fmt.Sprintf(`{"approved_ek": {"fingerprint": %q, "comment": "lab TPM"}}`, ekPrint), 201,
			[]string{fmt.Sprintf(`{"approved_ek":{"approved_at":"2025-03-04T04:00:00Z","comment":"lab TPM","fingerprint":%q}}`, ekPrint)}},
		{"admin", "POST", "/os-trustack-approved-eks", `{"approved_ek": {"fingerprint": "abc"}}`, 400, []string{"64 hex digits"}},
		{"admin", "POST", "/os-trustack-approved-eks", `{"approved_ek": {"comment": "x"}}`, 400, []string{"'fingerprint'"}},
		{"admin", "POST", "/os-trustack-approved-eks", `{"ek": {}}`, 400, []string{"'approved_ek'"}},
		{"p1", "POST", "/os-trustack-approved-eks", fmt.Sprintf(`{"approved_ek": {"fingerprint": %q}}`, ekPrint), 403, nil},
		{"admin", "GET", "/os-trustack-approved-eks", "", 200, []string{fmt.Sprintf(`{"approved_eks":[{"approved_at":"2025-03-04T04:00:00Z","comment":"lab TPM","fingerprint":%q}]}`, ekPrint)}},
		{"p1", "GET", "/os-trustack-approved-eks", "", 403, nil},
		{"p1", "DELETE", "/os-trustack-approved-eks/" + ekPrint, "", 403, nil},
		{"admin", "DELETE", "/os-trustack-approved-eks/" + ekPrint, "", 204, nil},
		{"admin", "DELETE", "/os-trustack-approved-eks/" + ekPrint, "", 404, []string{ekPrint}},
		{"admin", "GET", "/os-trustack-approved-eks", "", 200, []string{`{"approved_eks":[]}`}},

		// Unauthenticated callers.
		{"", "GET", "/os-trustack-whitelists", "", 401, nil},
	})
}

// TestAttestationAPIDisabled checks that a cloud whose hosts do not
// attest answers every attestation call with 501 saying so, operators
// only still: with no verifier, and with a nil one.
func TestAttestationAPIDisabled(t *testing.T) {
	for _, tc := range []struct {
		name string
		att  trust.Attestation
	}{
		{"no verifier", nil},
		{"a nil *attest.Service", (*attest.Service)(nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newAttestationAPI(t, tc.att)
			disabled := []string{"notImplemented", "Attestation is disabled in this cloud ([attestation] enabled = no)."}
			run(t, srv, []apiCase{
				{"admin", "GET", "/os-trustack-whitelists", "", 501, disabled},
				{"admin", "POST", "/os-trustack-whitelists", `{"whitelist": {"name": "gold"}}`, 501, disabled},
				{"admin", "GET", "/os-trustack-whitelists/gold", "", 501, disabled},
				{"admin", "PUT", "/os-trustack-whitelists/gold", `{"whitelist": {}}`, 501, disabled},
				{"admin", "DELETE", "/os-trustack-whitelists/gold", "", 501, disabled},
				{"admin", "GET", "/os-trustack-attestations", "", 501, disabled},
				{"admin", "GET", "/os-trustack-attestations/compute-1", "", 501, disabled},
				{"admin", "GET", "/os-trustack-attestations/compute-1/events", "", 501, disabled},
				{"admin", "DELETE", "/os-trustack-attestations/compute-1", "", 501, disabled},
				{"admin", "GET", "/os-trustack-approved-eks", "", 501, disabled},
				{"admin", "POST", "/os-trustack-approved-eks", `{"approved_ek": {}}`, 501, disabled},
				{"admin", "DELETE", "/os-trustack-approved-eks/ab", "", 501, disabled},
				{"p1", "GET", "/os-trustack-attestations", "", 403, []string{"trustack:attestation"}},
			})
		})
	}
}

// TestAttestationAPILargeWhitelist checks that a white-list larger than
// the API's usual bound on bodies, as one taken from a real host is,
// imports, and that the collections are not taken for project IDs.
func TestAttestationAPILargeWhitelist(t *testing.T) {
	srv := newAttestationAPI(t, newFakeAttestation())
	files := map[string][]string{}
	for i := range 5000 {
		files[fmt.Sprintf("/usr/lib/x86_64-linux-gnu/lib%04d.so.1", i)] = []string{digestA}
	}
	body, err := json.Marshal(map[string]any{"whitelist": map[string]any{"files": files}})
	if err != nil {
		t.Fatal(err)
	}
	if len(body) <= 114688 {
		t.Fatalf("the white-list's body is %d bytes, want more than the API's default bound", len(body))
	}
	run(t, srv, []apiCase{
		{"admin", "PUT", "/os-trustack-whitelists/big", string(body), 200, []string{`"name":"big"`}},
		{"admin", "GET", "/admin/os-trustack-whitelists", "", 200, []string{`"file_count":5000,"name":"big"`}},
		{"admin", "GET", "/admin/os-trustack-attestations/compute-3", "", 200, []string{`"state":"registered"`}},
		{"admin", "GET", "/admin/os-trustack-approved-eks", "", 200, []string{`"approved_eks":[]`}},
	})
}
