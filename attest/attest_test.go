package attest_test

import (
	"bytes"
	"crypto/sha256"
	"reflect"
	"strings"
	"testing"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/attest"
	"github.com/trustack/trustack/ima"
)

// baseline are the files a test host runs, as path, content pairs.
var baseline = []string{
	"/usr/bin/trustack", "trustack v1",
	"/usr/bin/qemu-system-x86_64", "qemu 8.2",
	"/etc/trustack/trustack.toml", "[attestation]\ninterval = 60\n",
}

// verify runs Verify and checks that it reached want, failing the test with
// the reasons otherwise.
func verify(t *testing.T, ev trustack.Evidence, n []byte, st attest.HostState, wl *trustack.Whitelist, want string) (trustack.Verdict, attest.HostState) {
	t.Helper()
	v, next := attest.Verify(ev, n, st, wl)
	if v.State != want {
		t.Fatalf("verdict %s %q, want %s", v.State, v.Reasons, want)
	}
	if v.State == trustack.VerdictTrusted && len(v.Reasons) != 0 {
		t.Errorf("trusted verdict with reasons %q", v.Reasons)
	}
	if wl != nil && v.Whitelist != wl.Name {
		t.Errorf("verdict's white-list %q, want %q", v.Whitelist, wl.Name)
	}
	return v, next
}

func TestVerifyFirstRound(t *testing.T) {
	h := newHost(t, baseline...)
	wl := h.whitelist("baseline")
	_, st := verify(t, h.evidence(t, nonce(1), 0), nonce(1), h.registered(t), wl, trustack.VerdictTrusted)
	if got, want := st.Replay.Entries, 4; got != want {
		t.Errorf("entries verified %d, want %d (boot_aggregate and 3 files)", got, want)
	}
	if !st.Attested || st.BootAggregate != wl.BootAggregate {
		t.Errorf("state attested %v, boot aggregate %q; want true, %q", st.Attested, st.BootAggregate, wl.BootAggregate)
	}
}

func TestVerifyNextRound(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string // measured between the rounds
	}{
		{"no new entries", nil},
		{"three new entries", []string{"/usr/lib/libvirt.so", "lib 1", "/usr/lib/libssl.so", "ssl 3", "/etc/hosts", "127.0.0.1 localhost"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t, baseline...)
			_, st := verify(t, h.evidence(t, nonce(1), 0), nonce(1), h.registered(t), h.whitelist("baseline"), trustack.VerdictTrusted)
			h.measure(t, tc.files...)
			wl := h.whitelist("baseline")
			_, st2 := verify(t, h.evidence(t, nonce(2), st.Replay.Entries), nonce(2), st, wl, trustack.VerdictTrusted)
			if got, want := st2.Replay.Entries, 4+len(tc.files)/2; got != want {
				t.Errorf("entries verified %d, want %d", got, want)
			}
			if st2.Clock.Clock < st.Clock.Clock {
				t.Errorf("state's clock went back from %d to %d", st.Clock.Clock, st2.Clock.Clock)
			}
		})
	}
}

// The agent reads the log after the quote, so the log may hold entries the
// quote does not cover yet: they are verified at the next round.
func TestVerifyLogAheadOfQuote(t *testing.T) {
	h := newHost(t, baseline...)
	ev := h.quote(t, h.ak, nonce(1))
	h.measure(t, "/usr/lib/libvirt.so", "lib 1", "/etc/hosts", "127.0.0.1 localhost")
	wl := h.whitelist("baseline")
	_, st := verify(t, h.withLog(t, ev, 0), nonce(1), h.registered(t), wl, trustack.VerdictTrusted)
	if got, want := st.Replay.Entries, 4; got != want {
		t.Fatalf("entries verified %d, want %d (those the quote covers)", got, want)
	}
	_, st = verify(t, h.evidence(t, nonce(2), st.Replay.Entries), nonce(2), st, wl, trustack.VerdictTrusted)
	if got, want := st.Replay.Entries, 6; got != want {
		t.Errorf("entries verified at the next round %d, want %d", got, want)
	}
}

// A reboot resets the PCRs and starts a new log: the replay restarts from
// entry 0.
func TestVerifyAfterReboot(t *testing.T) {
	h := newHost(t, baseline...)
	wl := h.whitelist("baseline")
	_, st := verify(t, h.evidence(t, nonce(1), 0), nonce(1), h.registered(t), wl, trustack.VerdictTrusted)
	if err := h.tp.PowerCycle(); err != nil {
		t.Fatalf("PowerCycle: %v", err)
	}
	h.boot(t)
	h.measure(t, baseline[:2]...)
	_, st2 := verify(t, h.evidence(t, nonce(2), 0), nonce(2), st, wl, trustack.VerdictTrusted)
	if st2.Clock.ResetCount != st.Clock.ResetCount+1 {
		t.Errorf("reset count %d after reboot, want %d", st2.Clock.ResetCount, st.Clock.ResetCount+1)
	}
	if got, want := st2.Replay.Entries, 2; got != want {
		t.Errorf("entries verified %d, want %d (the new boot's)", got, want)
	}
}

func TestVerifyExcludedPath(t *testing.T) {
	h := newHost(t, baseline...)
	wl := h.whitelist("baseline")
	h.measure(t, "/var/log/trustack/agent.log", "log line", "/tmp/scratch", "x")
	wl.Exclude = []string{"/var/log/**", "/tmp/*"}
	verify(t, h.evidence(t, nonce(1), 0), nonce(1), h.registered(t), wl, trustack.VerdictTrusted)
}

// Each rejection: the verdict is untrusted, a reason says why, and the
// verifier's state of the host is left as it was.
func TestVerifyRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		// round prepares a host verified once (st) and returns the
		// evidence of the next round, the nonce the verifier issued
		// for it and the state to verify it against.
		round func(t *testing.T, h *host, st attest.HostState) (trustack.Evidence, []byte, attest.HostState, *trustack.Whitelist)
		want  string // in a reason
	}{
		{
			name: "replayed quote",
			round: func(t *testing.T, h *host, st attest.HostState) (trustack.Evidence, []byte, attest.HostState, *trustack.Whitelist) {
				old := h.evidence(t, nonce(1), st.Replay.Entries)
				return old, nonce(2), st, nil
			},
			want: "answers another nonce",
		},
		{
			name: "key not certified",
			round: func(t *testing.T, h *host, st attest.HostState) (trustack.Evidence, []byte, attest.HostState, *trustack.Whitelist) {
				other, err := h.tp.CreateAK()
				if err != nil {
					t.Fatalf("CreateAK: %v", err)
				}
				ev := h.withLog(t, h.quote(t, other, nonce(2)), st.Replay.Entries)
				return ev, nonce(2), st, nil
			},
			want: "not signed by the attestation key the verifier certified",
		},
		{
			name: "entry altered",
			round: func(t *testing.T, h *host, st attest.HostState) (trustack.Evidence, []byte, attest.HostState, *trustack.Whitelist) {
				h.measure(t, "/usr/lib/libssl.so", "ssl 3", "/usr/lib/libvirt.so", "lib 1")
				entries := h.m.Entries(st.Replay.Entries)
				e := entries[0]
				e.TemplateData = bytes.Clone(e.TemplateData)
				e.TemplateData[4+len("sha256:")+1+5] ^= 1 // a byte of the file digest
				entries = append([]ima.Entry{e}, entries[1:]...)
				ev := h.quote(t, h.ak, nonce(2))
				ev.Log, ev.FromEntry = encode(t, entries), st.Replay.Entries
				return ev, nonce(2), st, nil
			},
			want: "entry 4 (/usr/lib/libssl.so) was altered",
		},
		{
			name: "entry altered with its template hash",
			round: func(t *testing.T, h *host, st attest.HostState) (trustack.Evidence, []byte, attest.HostState, *trustack.Whitelist) {
				h.measure(t, "/usr/lib/libssl.so", "ssl 3 with a backdoor")
				entries := h.m.Entries(st.Replay.Entries)
				good := sha256.Sum256([]byte("ssl 3"))
				e, err := ima.NewNG("sha256", good[:], "/usr/lib/libssl.so")
				if err != nil {
					t.Fatal(err)
				}
				entries[0] = e
				ev := h.quote(t, h.ak, nonce(2))
				ev.Log, ev.FromEntry = encode(t, entries), st.Replay.Entries
				return ev, nonce(2), st, nil
			},
			want: "does not reproduce the quoted PCR 10",
		},
		{
			name: "entry missing",
			round: func(t *testing.T, h *host, st attest.HostState) (trustack.Evidence, []byte, attest.HostState, *trustack.Whitelist) {
				h.measure(t, "/usr/lib/libssl.so", "ssl 3", "/usr/lib/libvirt.so", "lib 1", "/etc/hosts", "127.0.0.1 localhost")
				entries := h.m.Entries(st.Replay.Entries)
				entries = append(entries[:1:1], entries[2:]...)
				ev := h.quote(t, h.ak, nonce(2))
				ev.Log, ev.FromEntry = encode(t, entries), st.Replay.Entries
				return ev, nonce(2), st, nil
			},
			want: "does not reproduce the quoted PCR 10",
		},
		{
			name: "entries skipped",
			round: func(t *testing.T, h *host, st attest.HostState) (trustack.Evidence, []byte, attest.HostState, *trustack.Whitelist) {
				h.measure(t, "/usr/lib/libssl.so", "ssl 3", "/usr/lib/libvirt.so", "lib 1")
				return h.evidence(t, nonce(2), st.Replay.Entries+1), nonce(2), st, nil
			},
			want: "the entries between are missing",
		},
		{
			name: "reset count backwards",
			round: func(t *testing.T, h *host, st attest.HostState) (trustack.Evidence, []byte, attest.HostState, *trustack.Whitelist) {
				old := h.evidence(t, nonce(2), st.Replay.Entries)
				if err := h.tp.PowerCycle(); err != nil {
					t.Fatalf("PowerCycle: %v", err)
				}
				h.boot(t)
				h.measure(t, baseline...)
				_, later := verify(t, h.evidence(t, nonce(3), 0), nonce(3), st, nil, trustack.VerdictTrusted)
				// The TPM rolled back to before the reboot answers
				// the verifier's nonce.
				return old, nonce(2), later, nil
			},
			want: "reset count went back",
		},
		{
			name: "file changed",
			round: func(t *testing.T, h *host, st attest.HostState) (trustack.Evidence, []byte, attest.HostState, *trustack.Whitelist) {
				wl := h.whitelist("baseline")
				h.measure(t, "/usr/bin/trustack", "trustack v1 with a backdoor")
				return h.evidence(t, nonce(2), st.Replay.Entries), nonce(2), st, wl
			},
			want: "/usr/bin/trustack has content sha256:",
		},
		{
			name: "file not in white-list",
			round: func(t *testing.T, h *host, st attest.HostState) (trustack.Evidence, []byte, attest.HostState, *trustack.Whitelist) {
				wl := h.whitelist("baseline")
				h.measure(t, "/tmp/miner", "mine")
				return h.evidence(t, nonce(2), st.Replay.Entries), nonce(2), st, wl
			},
			want: "/tmp/miner is not in white-list baseline",
		},
		{
			name: "boot aggregate",
			round: func(t *testing.T, h *host, st attest.HostState) (trustack.Evidence, []byte, attest.HostState, *trustack.Whitelist) {
				wl := h.whitelist("baseline")
				wl.BootAggregate = "sha256:" + strings.Repeat("00", 32)
				return h.evidence(t, nonce(2), 0), nonce(2), h.registered(t), wl
			},
			want: "booted into a state",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t, baseline...)
			_, st := verify(t, h.evidence(t, nonce(1), 0), nonce(1), h.registered(t), h.whitelist("baseline"), trustack.VerdictTrusted)
			ev, n, st, wl := tc.round(t, h, st)
			v, got := verify(t, ev, n, st, wl, trustack.VerdictUntrusted)
			t.Logf("reasons: %q", v.Reasons)
			if !strings.Contains(strings.Join(v.Reasons, " "), tc.want) {
				t.Errorf("reasons %q, want one saying %q", v.Reasons, tc.want)
			}
			if !reflect.DeepEqual(got, st) {
				t.Errorf("state after an untrusted verdict %+v, want it unchanged %+v", got, st)
			}
		})
	}
}

// A host whose file changed is not trusted again when the file is
// restored: the log keeps the bad measurement.
func TestVerifyRestoredFileStaysUntrusted(t *testing.T) {
	h := newHost(t, baseline...)
	wl := h.whitelist("baseline")
	_, st := verify(t, h.evidence(t, nonce(1), 0), nonce(1), h.registered(t), wl, trustack.VerdictTrusted)
	h.measure(t, "/usr/bin/trustack", "trustack v1 with a backdoor")
	verify(t, h.evidence(t, nonce(2), st.Replay.Entries), nonce(2), st, wl, trustack.VerdictUntrusted)
	h.measure(t, baseline[:2]...)
	verify(t, h.evidence(t, nonce(3), st.Replay.Entries), nonce(3), st, wl, trustack.VerdictUntrusted)
}
