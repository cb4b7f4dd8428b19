package storetest

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/trustack/trustack"
)

// digest returns a made-up digest, "sha256:" and 64 hex digits.
func digest(n int) string { return fmt.Sprintf("sha256:%064x", n) }

func testWhitelists(t *testing.T, s Store) {
	baseline := &trustack.Whitelist{
		Name: "baseline",
		Files: map[string][]string{
			"/usr/bin/trustack":              {digest(1)},
			"/usr/bin/qemu-system-x86_64":    {digest(2), digest(3)}, // two allowed versions
			"/etc/trustack/trustack.toml":    {digest(4)},
			"/usr/lib/x86_64-linux-gnu/ü.so": {digest(5)},
		},
		Exclude:       []string{"/var/log/**", "/tmp/*"},
		BootAggregate: digest(6),
	}
	must(t, s.CreateWhitelist(ctx, baseline))
	got, err := s.Whitelist(ctx, "baseline")
	must(t, err)
	equal(t, got, baseline)

	err = s.CreateWhitelist(ctx, &trustack.Whitelist{Name: "baseline"})
	code(t, err, trustack.ECONFLICT)
	message(t, err, "White-list baseline already exists.")
	got, err = s.Whitelist(ctx, "baseline")
	must(t, err)
	equal(t, got, baseline) // the refused create changed nothing
	_, err = s.Whitelist(ctx, "nope")
	code(t, err, trustack.ENOTFOUND)
	message(t, err, "White-list nope does not exist.")

	// Empty files and exclusions, nil or not, read back as nil.
	must(t, s.CreateWhitelist(ctx, &trustack.Whitelist{Name: "empty", Files: map[string][]string{}, Exclude: []string{}}))
	got, err = s.Whitelist(ctx, "empty")
	must(t, err)
	equal(t, got, &trustack.Whitelist{Name: "empty"})

	// Put replaces a white-list whole, and adds one that is not there.
	replaced := &trustack.Whitelist{Name: "baseline", Files: map[string][]string{"/usr/bin/trustack": {digest(7)}}}
	must(t, s.PutWhitelist(ctx, replaced))
	got, err = s.Whitelist(ctx, "baseline")
	must(t, err)
	equal(t, got, replaced)
	added := &trustack.Whitelist{Name: "Zeta", Exclude: []string{"/srv/**"}, BootAggregate: digest(8)}
	must(t, s.PutWhitelist(ctx, added))
	got, err = s.Whitelist(ctx, "Zeta")
	must(t, err)
	equal(t, got, added)

	// Listed by name as Go orders strings (capitals first), whatever the
	// database's collation.
	alpha := &trustack.Whitelist{Name: "alpha", Files: map[string][]string{"/a": {digest(9)}}}
	must(t, s.CreateWhitelist(ctx, alpha))
	list, err := s.Whitelists(ctx)
	must(t, err)
	equal(t, list, []*trustack.Whitelist{added, alpha, replaced, {Name: "empty"}})

	must(t, s.DeleteWhitelist(ctx, "baseline"))
	err = s.DeleteWhitelist(ctx, "baseline")
	code(t, err, trustack.ENOTFOUND)
	message(t, err, "White-list baseline does not exist.")
	_, err = s.Whitelist(ctx, "baseline")
	code(t, err, trustack.ENOTFOUND)
	list, err = s.Whitelists(ctx)
	must(t, err)
	equal(t, list, []*trustack.Whitelist{added, alpha, {Name: "empty"}})
}

// testLargeWhitelist stores the white-list of a whole host: thousands of
// files, as the creator of white-lists makes them from a reference host.
func testLargeWhitelist(t *testing.T, s Store) {
	const n = 5000
	wl := &trustack.Whitelist{Name: "host", Files: make(map[string][]string, n), BootAggregate: digest(0)}
	for i := range n {
		wl.Files[fmt.Sprintf("/usr/lib/x86_64-linux-gnu/lib%04d.so.%d", i, i%7)] = []string{digest(2 * i), digest(2*i + 1)}
	}
	must(t, s.CreateWhitelist(ctx, wl))
	got, err := s.Whitelist(ctx, "host")
	must(t, err)
	if len(got.Files) != n {
		t.Fatalf("white-list of %d files read back with %d", n, len(got.Files))
	}
	equal(t, got, wl)

	delete(wl.Files, "/usr/lib/x86_64-linux-gnu/lib0000.so.0")
	wl.Files["/usr/bin/new"] = []string{digest(n * 2)}
	must(t, s.PutWhitelist(ctx, wl))
	list, err := s.Whitelists(ctx)
	must(t, err)
	equal(t, list, []*trustack.Whitelist{wl})
}

// attested is a host's record with every field set, as the verifier
// writes it after a trusted round; times have microseconds, as stored.
func attested(host string) *trustack.HostAttestation {
	at := start.Add(90*time.Minute + 123456*time.Microsecond)
	return &trustack.HostAttestation{
		Host:          host,
		CID:           "cid-" + host,
		RegisteredAt:  start.Add(time.Microsecond),
		EKCert:        []byte{0x30, 0x82, 0x00, 0x01, 0xff},
		AKPublic:      []byte{0x00, 0x01, 0x00, 0x0b},
		CredentialKey: []byte("pkix " + host),
		Mode:          trustack.MeasuredInUserspace,
		Verdict: trustack.Verdict{State: trustack.VerdictUntrusted, Whitelist: "baseline", At: at,
			Reasons: []string{"File /usr/bin/x is not in white-list baseline.", "PCR 10 does not match the log."}},
		FailingSince: at.Add(-time.Minute),
		Revoked:      true,
		Checkpoint:   []byte{0, 1, 2, 0, 255},
	}
}

// put makes a host's record a, whatever was there, and returns the
// record written.
func put(t testing.TB, s Store, a *trustack.HostAttestation) *trustack.HostAttestation {
	t.Helper()
	out, err := s.UpdateHostAttestation(ctx, a.Host, func(*trustack.HostAttestation) (*trustack.HostAttestation, error) { return a, nil })
	must(t, err)
	return out
}

func testHostAttestations(t *testing.T, s Store) {
	_, err := s.HostAttestation(ctx, "h1")
	code(t, err, trustack.ENOTFOUND)
	message(t, err, "Host h1 has not registered for attestation.")
	list, err := s.HostAttestations(ctx)
	must(t, err)
	equal(t, len(list), 0)

	// The first update sees no record and makes one, of version 1
	// whatever it said, for the host it was asked about. No compute host
	// of that name needs to exist: a TPM registers first.
	rec := attested("h1")
	rec.Host, rec.Version = "", 99
	var seen []*trustack.HostAttestation
	written, err := s.UpdateHostAttestation(ctx, "h1", func(cur *trustack.HostAttestation) (*trustack.HostAttestation, error) {
		seen = append(seen, cur)
		return rec, nil
	})
	must(t, err)
	equal(t, seen, []*trustack.HostAttestation{nil})
	want := attested("h1")
	want.Version = 1
	equal(t, written, want)
	got, err := s.HostAttestation(ctx, "h1")
	must(t, err)
	equal(t, got, want)
	if rec.Version != 99 || rec.Host != "" {
		t.Errorf("the update changed the record fn returned: version %d, host %q", rec.Version, rec.Host)
	}

	// The next sees the record as stored, and moves the version on.
	written, err = s.UpdateHostAttestation(ctx, "h1", func(cur *trustack.HostAttestation) (*trustack.HostAttestation, error) {
		equal(t, cur, want)
		cur.Verdict = trustack.Verdict{State: trustack.VerdictTrusted, Whitelist: "baseline", At: cur.Verdict.At.Add(time.Minute), By: "controller-1"}
		cur.FailingSince, cur.Revoked = time.Time{}, false
		cur.Checkpoint = []byte("after round 2")
		return cur, nil
	})
	must(t, err)
	want.Verdict = trustack.Verdict{State: trustack.VerdictTrusted, Whitelist: "baseline", At: want.Verdict.At.Add(time.Minute), By: "controller-1"}
	want.FailingSince, want.Revoked, want.Checkpoint, want.Version = time.Time{}, false, []byte("after round 2"), 2
	equal(t, written, want)
	got, err = s.HostAttestation(ctx, "h1")
	must(t, err)
	equal(t, got, want)
	if !got.Trusted() || got.RCoT() != "baseline" {
		t.Errorf("stored trusted record: Trusted() %v, RCoT() %q; want true, baseline", got.Trusted(), got.RCoT())
	}

	// A record with nothing set reads back with zero times, nil bytes and
	// no reasons; empty bytes and reasons read back as nil too.
	empty := put(t, s, &trustack.HostAttestation{Host: "h0", EKCert: []byte{}, Verdict: trustack.Verdict{Reasons: []string{}}})
	equal(t, empty, &trustack.HostAttestation{Host: "h0", Version: 1})
	got, err = s.HostAttestation(ctx, "h0")
	must(t, err)
	equal(t, got, empty)

	// Failed updates change nothing, for a record or for none.
	refused := trustack.Errorf(trustack.EFORBIDDEN, "refused")
	for _, tc := range []struct {
		name string
		fn   func(*trustack.HostAttestation) (*trustack.HostAttestation, error)
		code string
	}{
		{"an error from fn", func(cur *trustack.HostAttestation) (*trustack.HostAttestation, error) {
			if cur != nil {
				cur.CID, cur.Revoked = "changed", true
			}
			return cur, refused
		}, trustack.EFORBIDDEN},
		{"no record from fn", func(*trustack.HostAttestation) (*trustack.HostAttestation, error) { return nil, nil }, trustack.EINVALID},
		{"another host's record from fn", func(*trustack.HostAttestation) (*trustack.HostAttestation, error) { return attested("h9"), nil }, trustack.EINVALID},
	} {
		for _, host := range []string{"h1", "h2"} { // a record and none
			_, err := s.UpdateHostAttestation(ctx, host, tc.fn)
			if got := trustack.ErrorCode(err); got != tc.code {
				t.Errorf("update of %s with %s: got %v, want code %s", host, tc.name, err, tc.code)
			}
			if tc.code == trustack.EFORBIDDEN && err != refused {
				t.Errorf("update of %s with %s: got %v, want fn's error as is", host, tc.name, err)
			}
		}
	}
	got, err = s.HostAttestation(ctx, "h1")
	must(t, err)
	equal(t, got, want)
	_, err = s.HostAttestation(ctx, "h2")
	code(t, err, trustack.ENOTFOUND)
	_, err = s.HostAttestation(ctx, "h9")
	code(t, err, trustack.ENOTFOUND)

	_, err = s.UpdateHostAttestation(ctx, "", func(*trustack.HostAttestation) (*trustack.HostAttestation, error) { return attested(""), nil })
	code(t, err, trustack.EINVALID)

	// Listed by host name as Go orders strings.
	upper := put(t, s, attested("H3"))
	list, err = s.HostAttestations(ctx)
	must(t, err)
	equal(t, list, []*trustack.HostAttestation{upper, empty, want})

	// Deleting a record forgets the host until it registers again, and
	// takes its events along, not another host's.
	must(t, s.AddAttestationEvents(ctx,
		trustack.AttestationEvent{Host: "h1", At: start, Kind: trustack.EventRegistered, Message: "Host h1 registered."},
		trustack.AttestationEvent{Host: "h0", At: start, Kind: trustack.EventRegistered, Message: "Host h0 registered."}))
	must(t, s.DeleteHostAttestation(ctx, "h1"))
	err = s.DeleteHostAttestation(ctx, "h1")
	code(t, err, trustack.ENOTFOUND)
	message(t, err, "Host h1 has not registered for attestation.")
	_, err = s.HostAttestation(ctx, "h1")
	code(t, err, trustack.ENOTFOUND)
	events, err := s.AttestationEvents(ctx, "h1", 0)
	must(t, err)
	equal(t, len(events), 0)
	events, err = s.AttestationEvents(ctx, "h0", 0)
	must(t, err)
	equal(t, events, []trustack.AttestationEvent{{Host: "h0", At: start, Kind: trustack.EventRegistered, Message: "Host h0 registered."}})
	list, err = s.HostAttestations(ctx)
	must(t, err)
	equal(t, list, []*trustack.HostAttestation{upper, empty})

	// Registering again starts the record over, at version 1.
	again := put(t, s, attested("h1"))
	equal(t, again.Version, int64(1))
}

// testHostAttestationUpdatesUnderConcurrency has many updates count in
// one host's checkpoint at once, the first of them making the record:
// none may be lost, and each must run its function once, only the first
// seeing no record.
func testHostAttestationUpdatesUnderConcurrency(t *testing.T, s Store) {
	const n = 20
	var (
		mu           sync.Mutex
		calls, fresh int
		wg           sync.WaitGroup
	)
	begin := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-begin
			_, err := s.UpdateHostAttestation(ctx, "h", func(cur *trustack.HostAttestation) (*trustack.HostAttestation, error) {
				mu.Lock()
				calls++
				mu.Unlock()
				if cur == nil {
					mu.Lock()
					fresh++
					mu.Unlock()
					return &trustack.HostAttestation{CID: "cid", Checkpoint: []byte("1")}, nil
				}
				count, err := strconv.Atoi(string(cur.Checkpoint))
				if err != nil {
					return nil, err
				}
				cur.Checkpoint = []byte(strconv.Itoa(count + 1))
				return cur, nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	close(begin)
	wg.Wait()

	got, err := s.HostAttestation(ctx, "h")
	must(t, err)
	if string(got.Checkpoint) != strconv.Itoa(n) || got.Version != n {
		t.Errorf("after %d concurrent increments: count %q, version %d; want %d and %d: updates were lost", n, got.Checkpoint, got.Version, n, n)
	}
	if calls != n || fresh != 1 {
		t.Errorf("%d updates ran their function %d times, %d of them seeing no record; want %d times, once without", n, calls, fresh, n)
	}
}

func testApprovedEKs(t *testing.T, s Store) {
	a := &trustack.ApprovedEK{Fingerprint: fmt.Sprintf("%064x", 0xa), Comment: "lab TPM without a vendor chain", ApprovedAt: start.Add(time.Microsecond)}
	b := &trustack.ApprovedEK{Fingerprint: fmt.Sprintf("%064x", 0xb), ApprovedAt: start}
	must(t, s.ApproveEK(ctx, b))
	must(t, s.ApproveEK(ctx, a))
	got, err := s.ApprovedEK(ctx, a.Fingerprint)
	must(t, err)
	equal(t, got, a)
	list, err := s.ApprovedEKs(ctx)
	must(t, err)
	equal(t, list, []*trustack.ApprovedEK{a, b})
	_, err = s.ApprovedEK(ctx, "ff")
	code(t, err, trustack.ENOTFOUND)
	message(t, err, "EK ff is not approved.")

	// Approving again replaces the comment and the time.
	again := &trustack.ApprovedEK{Fingerprint: b.Fingerprint, Comment: "checked by hand", ApprovedAt: start.Add(time.Hour)}
	must(t, s.ApproveEK(ctx, again))
	got, err = s.ApprovedEK(ctx, b.Fingerprint)
	must(t, err)
	equal(t, got, again)
	// A zero time reads back as zero.
	zero := &trustack.ApprovedEK{Fingerprint: "00"}
	must(t, s.ApproveEK(ctx, zero))
	list, err = s.ApprovedEKs(ctx)
	must(t, err)
	equal(t, list, []*trustack.ApprovedEK{zero, a, again})

	must(t, s.RevokeEK(ctx, a.Fingerprint))
	err = s.RevokeEK(ctx, a.Fingerprint)
	code(t, err, trustack.ENOTFOUND)
	message(t, err, "EK "+a.Fingerprint+" is not approved.")
	_, err = s.ApprovedEK(ctx, a.Fingerprint)
	code(t, err, trustack.ENOTFOUND)
	list, err = s.ApprovedEKs(ctx)
	must(t, err)
	equal(t, list, []*trustack.ApprovedEK{zero, again})
}

func testAttestationEvents(t *testing.T, s Store) {
	none, err := s.AttestationEvents(ctx, "h1", 0)
	must(t, err)
	equal(t, len(none), 0)
	must(t, s.AddAttestationEvents(ctx))

	ev := func(host string, at time.Time, kind, msg string) trustack.AttestationEvent {
		return trustack.AttestationEvent{Host: host, At: at, Kind: kind, Message: msg}
	}
	t1, t2, t3 := start.Add(time.Second), start.Add(2*time.Second), start.Add(3*time.Second+time.Microsecond)
	registered := ev("h1", start, trustack.EventRegistered, "Host h1 registered.")
	untrusted := ev("h1", t2, trustack.EventUntrusted, "File /usr/bin/x is not in white-list baseline.")
	trusted := ev("h1", t1, trustack.EventTrusted, "Host h1 is trusted.") // added after a later one
	revoked := ev("h1", t3, trustack.EventRevoked, "Host h1 was revoked.")
	evacuating := ev("h1", t3, trustack.EventEvacuating, "Servers leave host h1.") // same time: added order
	refused := ev("h2", time.Time{}, trustack.EventRefused, "The EK of host h2 is not approved.")
	must(t, s.AddAttestationEvents(ctx, registered, untrusted, refused))
	must(t, s.AddAttestationEvents(ctx, trusted, revoked, evacuating))
	unreachable := ev("h1", t3, trustack.EventUnreachable, "Host h1 did not answer.")
	must(t, s.AddAttestationEvents(ctx, unreachable))

	all := []trustack.AttestationEvent{registered, trusted, untrusted, revoked, evacuating, unreachable}
	for _, tc := range []struct {
		limit int
		want  []trustack.AttestationEvent
	}{
		{0, all},
		{len(all), all},
		{100, all},
		{1, all[5:]},
		{3, all[3:]},
		{4, all[2:]},
	} {
		got, err := s.AttestationEvents(ctx, "h1", tc.limit)
		must(t, err)
		if !equalEvents(got, tc.want) {
			t.Errorf("AttestationEvents(h1, %d):\ngot  %+v\nwant %+v", tc.limit, got, tc.want)
		}
	}
	got, err := s.AttestationEvents(ctx, "h2", 0)
	must(t, err)
	equal(t, got, []trustack.AttestationEvent{refused}) // its zero time read back as zero
	_, err = s.AttestationEvents(ctx, "h1", -1)
	code(t, err, trustack.EINVALID)

	// A host with events and no record (its registration was refused)
	// has nothing to delete; its events stay.
	code(t, s.DeleteHostAttestation(ctx, "h2"), trustack.ENOTFOUND)
	got, err = s.AttestationEvents(ctx, "h2", 0)
	must(t, err)
	equal(t, len(got), 1)
}

// equalEvents compares lists of events, an empty one equal to nil.
func equalEvents(a, b []trustack.AttestationEvent) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// testAttestationEventsUnderConcurrency has many writers add events of
// one time for one host at once: none may be lost, and each writer's come
// back in the order it added them.
func testAttestationEventsUnderConcurrency(t *testing.T, s Store) {
	const writers, each = 10, 5
	var wg sync.WaitGroup
	begin := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-begin
			var list []trustack.AttestationEvent
			for i := range each {
				list = append(list, trustack.AttestationEvent{Host: "h", At: start, Kind: trustack.EventUntrusted, Message: fmt.Sprintf("%d %d", w, i)})
			}
			// Another host's in the same call, before and after.
			list = append([]trustack.AttestationEvent{{Host: "z", At: start, Kind: trustack.EventTrusted}}, list...)
			list = append(list, trustack.AttestationEvent{Host: "a", At: start, Kind: trustack.EventTrusted})
			if err := s.AddAttestationEvents(ctx, list...); err != nil {
				t.Error(err)
			}
		}()
	}
	close(begin)
	wg.Wait()

	got, err := s.AttestationEvents(ctx, "h", 0)
	must(t, err)
	if len(got) != writers*each {
		t.Fatalf("%d writers added %d events each; %d were kept", writers, each, len(got))
	}
	next := make([]int, writers)
	for _, e := range got {
		var w, i int
		if _, err := fmt.Sscanf(e.Message, "%d %d", &w, &i); err != nil {
			t.Fatalf("event %q: %v", e.Message, err)
		}
		if i != next[w] {
			t.Fatalf("writer %d's event %d came back after its event %d", w, i, next[w]-1)
		}
		next[w]++
	}
	for _, host := range []string{"a", "z"} {
		got, err := s.AttestationEvents(ctx, host, 0)
		must(t, err)
		if len(got) != writers {
			t.Errorf("host %s has %d events, want %d", host, len(got), writers)
		}
	}
}
