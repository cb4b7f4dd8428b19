package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"

	"github.com/trustack/trustack"
)

// The commands of attestation, over trustack's extension of the compute
// API: the white-lists hosts are held to, what the verifier concluded of
// each host, and the TPMs operators approved.

// whitelistBody is a white-list whole, as the API answers and as the
// files of export and import hold it: {"name", "files": {"/path":
// ["sha256:HEX", ...]}, "exclude", "boot_aggregate"}.
type whitelistBody struct {
	Name          string              `json:"name"`
	Files         map[string][]string `json:"files"`
	Exclude       []string            `json:"exclude"`
	BootAggregate string              `json:"boot_aggregate"`
}

// summary is a white-list without its files, which may be thousands.
func (w whitelistBody) summary() record {
	return record{{"name", w.Name}, {"files", len(w.Files)}, {"exclude", orEmpty(w.Exclude)}, {"boot_aggregate", w.BootAggregate}}
}

func orEmpty(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

// readWhitelist reads a white-list file ("-" for standard input): the
// API's white-list object, bare as export writes it or wrapped in
// {"whitelist": ...}. Unknown fields are refused, to catch typos. It
// returns EINVALID for a file it cannot read or parse.
func readWhitelist(file string) (*whitelistBody, error) {
	var b []byte
	var err error
	if file == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, trustack.Errorf(trustack.EINVALID, "read white-list: %v", err)
	}
	var wrapped map[string]json.RawMessage
	if json.Unmarshal(b, &wrapped) == nil && len(wrapped) == 1 && wrapped["whitelist"] != nil {
		b = wrapped["whitelist"]
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var wl whitelistBody
	if err := dec.Decode(&wl); err != nil {
		return nil, trustack.Errorf(trustack.EINVALID, "white-list %s: %v (want {\"name\", \"files\": {\"/path\": [\"sha256:HEX\"]}, \"exclude\", \"boot_aggregate\"})", file, err)
	}
	if wl.Files == nil {
		wl.Files = map[string][]string{}
	}
	return &wl, nil
}

// whitelistCall makes a call that answers with a white-list, and shows
// its summary.
func (c *Client) whitelistCall(ctx context.Context, method string, want int, body any, path ...string) error {
	var out struct {
		Whitelist whitelistBody `json:"whitelist"`
	}
	if err := c.request(ctx, method, want, body, &out, nil, path...); err != nil {
		return err
	}
	return c.show(out.Whitelist.summary())
}

// CreateWhitelistFromHost creates the white-list name of what a
// known-good, registered host runs: every file its measurement log
// measured, with the digests measured, and its boot aggregate. It shows
// the white-list's summary.
func (c *Client) CreateWhitelistFromHost(ctx context.Context, name, host string) error {
	return c.whitelistCall(ctx, http.MethodPost, http.StatusCreated, map[string]any{"whitelist": map[string]string{"name": name, "from_host": host}},
		"os-trustack-whitelists")
}

// CreateWhitelistFromFile creates the white-list name from a file in the
// format export writes (its name, if any, is replaced by name), and
// shows its summary.
func (c *Client) CreateWhitelistFromFile(ctx context.Context, name, file string) error {
	wl, err := readWhitelist(file)
	if err != nil {
		return err
	}
	wl.Name = name
	return c.whitelistCall(ctx, http.MethodPost, http.StatusCreated, map[string]any{"whitelist": wl}, "os-trustack-whitelists")
}

// ImportWhitelist creates a white-list from a file in the format export
// writes, or replaces the one of its name. The name is name if given,
// otherwise the file's. It shows the white-list's summary.
func (c *Client) ImportWhitelist(ctx context.Context, file, name string) error {
	wl, err := readWhitelist(file)
	if err != nil {
		return err
	}
	if name != "" {
		wl.Name = name
	}
	if wl.Name == "" {
		return trustack.Errorf(trustack.EINVALID, "white-list %s has no name: give --name", file)
	}
	return c.whitelistCall(ctx, http.MethodPut, http.StatusOK, map[string]any{"whitelist": wl}, "os-trustack-whitelists", wl.Name)
}

// whitelist returns a white-list whole.
func (c *Client) whitelist(ctx context.Context, name string) (*whitelistBody, error) {
	var out struct {
		Whitelist whitelistBody `json:"whitelist"`
	}
	if err := c.request(ctx, http.MethodGet, http.StatusOK, nil, &out, nil, "os-trustack-whitelists", name); err != nil {
		return nil, err
	}
	if out.Whitelist.Files == nil {
		out.Whitelist.Files = map[string][]string{}
	}
	out.Whitelist.Exclude = orEmpty(out.Whitelist.Exclude)
	return &out.Whitelist, nil
}

// ShowWhitelist shows a white-list: its summary, then every file it
// allows with the digests allowed, by path. As JSON, it is the
// white-list whole, as export writes it.
func (c *Client) ShowWhitelist(ctx context.Context, name string) error {
	wl, err := c.whitelist(ctx, name)
	if err != nil {
		return err
	}
	if c.out.Format == FormatJSON {
		return writeJSON(c.out.Out, wl)
	}
	if err := c.show(wl.summary()); err != nil {
		return err
	}
	fmt.Fprintln(c.out.Out)
	t := &table{columns: []string{"Path", "Digests"}}
	for _, p := range slices.Sorted(maps.Keys(wl.Files)) {
		t.add(p, wl.Files[p])
	}
	return c.list(t)
}

// ExportWhitelist writes a white-list whole, as JSON, to a file (the
// output for "" or "-"), in the format import reads.
func (c *Client) ExportWhitelist(ctx context.Context, name, file string) (err error) {
	wl, err := c.whitelist(ctx, name)
	if err != nil {
		return err
	}
	if file == "" || file == "-" {
		return writeJSON(c.out.Out, wl)
	}
	f, err := os.Create(file)
	if err != nil {
		return trustack.Errorf(trustack.EINVALID, "export white-list: %v", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(file)
		}
	}()
	return writeJSON(f, wl)
}

// ListWhitelists lists the white-lists, with how many files each allows.
func (c *Client) ListWhitelists(ctx context.Context) error {
	var out struct {
		Whitelists []struct {
			Name          string   `json:"name"`
			FileCount     int      `json:"file_count"`
			Exclude       []string `json:"exclude"`
			BootAggregate string   `json:"boot_aggregate"`
		} `json:"whitelists"`
	}
	if err := c.request(ctx, http.MethodGet, http.StatusOK, nil, &out, nil, "os-trustack-whitelists"); err != nil {
		return err
	}
	t := &table{columns: []string{"Name", "Files", "Exclude", "Boot aggregate"}}
	for _, w := range out.Whitelists {
		t.add(w.Name, w.FileCount, orEmpty(w.Exclude), w.BootAggregate)
	}
	return c.list(t)
}

// DeleteWhitelists deletes white-lists. It tries every one and returns
// the errors of those it could not delete.
func (c *Client) DeleteWhitelists(ctx context.Context, names []string) error {
	return eachOf("delete white-list", names, func(name string) error {
		return c.request(ctx, http.MethodDelete, http.StatusNoContent, nil, nil, nil, "os-trustack-whitelists", name)
	})
}

// Hosts' attestations.

type attestationBody struct {
	Host          string   `json:"host"`
	State         string   `json:"state"`
	Whitelist     string   `json:"whitelist"`
	Mode          string   `json:"mode"`
	CID           string   `json:"cid"`
	EKFingerprint string   `json:"ek_fingerprint"`
	RegisteredAt  string   `json:"registered_at"`
	AttestedAt    string   `json:"attested_at"`
	AttestedBy    string   `json:"attested_by"`
	FailingSince  string   `json:"failing_since"`
	Reasons       []string `json:"reasons"`
}

// ListHostAttestations lists the hosts known to the verifier: each one's
// state, the white-list it was attested against, how it is measured,
// when it was last attested and, if it is not trusted, the first reason.
func (c *Client) ListHostAttestations(ctx context.Context) error {
	var out struct {
		Attestations []attestationBody `json:"attestations"`
	}
	if err := c.request(ctx, http.MethodGet, http.StatusOK, nil, &out, nil, "os-trustack-attestations"); err != nil {
		return err
	}
	t := &table{columns: []string{"Host", "State", "White-list", "Mode", "Attested", "Reason"}}
	for _, a := range out.Attestations {
		var reason string
		if a.State != trustack.VerdictTrusted && len(a.Reasons) > 0 {
			reason = a.Reasons[0]
		}
		t.add(a.Host, a.State, a.Whitelist, a.Mode, a.AttestedAt, reason)
	}
	return c.list(t)
}

// ShowHostAttestation shows what the verifier knows of a host, with every
// reason of its latest verdict (in a table, one line each).
func (c *Client) ShowHostAttestation(ctx context.Context, host string) error {
	var out struct {
		Attestation attestationBody `json:"attestation"`
	}
	if err := c.request(ctx, http.MethodGet, http.StatusOK, nil, &out, nil, "os-trustack-attestations", host); err != nil {
		return err
	}
	a := out.Attestation
	r := record{{"host", a.Host}, {"state", a.State}, {"whitelist", a.Whitelist}, {"mode", a.Mode}, {"cid", a.CID},
		{"ek_fingerprint", a.EKFingerprint}, {"registered_at", a.RegisteredAt}, {"attested_at", a.AttestedAt}, {"attested_by", a.AttestedBy}, {"failing_since", a.FailingSince}}
	if c.out.Format == FormatJSON {
		return c.show(append(r, field{"reasons", orEmpty(a.Reasons)}))
	}
	for i, reason := range a.Reasons {
		name := ""
		if i == 0 {
			name = "reasons"
		}
		r = append(r, field{name, reason})
	}
	return c.show(r)
}

// HostEvents lists a host's attestation events, oldest first: the last
// limit of them, all for 0.
func (c *Client) HostEvents(ctx context.Context, host string, limit int) error {
	var out struct {
		Events []struct {
			At      string `json:"at"`
			Kind    string `json:"kind"`
			Message string `json:"message"`
		} `json:"events"`
	}
	var query url.Values
	if limit > 0 {
		query = url.Values{"limit": {strconv.Itoa(limit)}}
	}
	if err := c.request(ctx, http.MethodGet, http.StatusOK, nil, &out, query, "os-trustack-attestations", host, "events"); err != nil {
		return err
	}
	t := &table{columns: []string{"Time", "Kind", "Message"}}
	for _, e := range out.Events {
		t.add(e.At, e.Kind, e.Message)
	}
	return c.list(t)
}

// ForgetHosts removes the verifier's records and events of hosts,
// withdrawing their bus credentials: a host's name is then free for
// another TPM. It tries every one and returns the errors of those it
// could not forget.
func (c *Client) ForgetHosts(ctx context.Context, hosts []string) error {
	return eachOf("forget host", hosts, func(host string) error {
		return c.request(ctx, http.MethodDelete, http.StatusNoContent, nil, nil, nil, "os-trustack-attestations", host)
	})
}

// Approved EKs.

type approvedEKBody struct {
	Fingerprint string `json:"fingerprint"`
	Comment     string `json:"comment"`
	ApprovedAt  string `json:"approved_at"`
}

// ApproveEK lets the TPM whose EK certificate has the fingerprint (the
// SHA-256 of its DER, in hex, as a refused registration names it)
// register although no configured manufacturer CA vouches for it, and
// shows the approval.
func (c *Client) ApproveEK(ctx context.Context, fingerprint, comment string) error {
	var out struct {
		EK approvedEKBody `json:"approved_ek"`
	}
	if err := c.request(ctx, http.MethodPost, http.StatusCreated, map[string]any{"approved_ek": approvedEKBody{Fingerprint: fingerprint, Comment: comment}}, &out, nil,
		"os-trustack-approved-eks"); err != nil {
		return err
	}
	return c.show(record{{"fingerprint", out.EK.Fingerprint}, {"comment", out.EK.Comment}, {"approved_at", out.EK.ApprovedAt}})
}

// ListApprovedEKs lists the approved EKs.
func (c *Client) ListApprovedEKs(ctx context.Context) error {
	var out struct {
		EKs []approvedEKBody `json:"approved_eks"`
	}
	if err := c.request(ctx, http.MethodGet, http.StatusOK, nil, &out, nil, "os-trustack-approved-eks"); err != nil {
		return err
	}
	t := &table{columns: []string{"Fingerprint", "Comment", "Approved"}}
	for _, ek := range out.EKs {
		t.add(ek.Fingerprint, ek.Comment, ek.ApprovedAt)
	}
	return c.list(t)
}

// RevokeEKs withdraws approvals: those TPMs can no longer register
// (hosts registered with them stay until they register again). It tries
// every one and returns the errors of those it could not revoke.
func (c *Client) RevokeEKs(ctx context.Context, fingerprints []string) error {
	return eachOf("revoke EK", fingerprints, func(fp string) error {
		return c.request(ctx, http.MethodDelete, http.StatusNoContent, nil, nil, nil, "os-trustack-approved-eks", fp)
	})
}
