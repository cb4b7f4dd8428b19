package attest

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	mathrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/bus"
	"github.com/trustack/trustack/ima"
	"github.com/trustack/trustack/tpm"
	"github.com/trustack/trustack/wire"
)

// Hosts is the verifier's view of the compute hosts: which physical
// domain a host is in decides the white-list it is held to (the domain's
// DCoT).
type Hosts interface {
	// HostByName returns a compute host; ENOTFOUND before its agent
	// first joined.
	HostByName(ctx context.Context, name string) (*trustack.Host, error)
	// PhysicalDomain returns a domain; ENOTFOUND.
	PhysicalDomain(ctx context.Context, name string) (*trustack.PhysicalDomain, error)
}

// Enforcer applies what the verifier concludes to compute.
type Enforcer interface {
	// ApplyAttestation sets a host's chain of trust (rcot, its security
	// property trust; "" for none) and whether attestation keeps it out
	// of scheduling (hold, a sentence, "" to let it back). Servers on a
	// held host are migrated to other hosts. ENOTFOUND for a host that
	// never joined.
	ApplyAttestation(ctx context.Context, host, rcot, hold string) error
	// HostServers returns how many servers a host has.
	HostServers(ctx context.Context, host string) (int, error)
}

// Options configure the verifier; zero values take the defaults.
type Options struct {
	// Interval is the time between two attestations of a host (default
	// 60 s), each drawn within 10% of it so that hosts spread out.
	Interval time.Duration
	// Grace is how long a host may stay unreachable, keeping its place
	// and servers, before it is put out (default two intervals). An
	// untrusted host is put out at once.
	Grace time.Duration
	// Timeout bounds an agent's answer to an evidence request (default
	// 10 s).
	Timeout time.Duration
	// Roots are the TPM manufacturers' CAs that EK certificates must
	// chain to, through Intermediates (nil: none).
	Roots, Intermediates *x509.CertPool
	// Disconnect closes the bus connections of a bus user (a host's CID)
	// whose credentials were withdrawn; nil when the bus is not the
	// embedded one (an external NATS does its own authentication).
	Disconnect func(user string)
	// Now returns the current time (default time.Now); Rand is the
	// source of nonces, challenges' secrets and identities (default
	// crypto/rand.Reader).
	Now  func() time.Time
	Rand io.Reader
	// Log receives what the verifier does (default: discarded).
	Log *slog.Logger
	// Shard says which hosts this verifier attests, when several share
	// the store (a cluster.Membership); nil for all.
	Shard interface{ Owns(host string) bool }
	// Name is this verifier's controller, named with its verdicts.
	Name string
	// Check judges a host's evidence (default Verify). A benchmark of the
	// verifier's own work at scale swaps in one that takes simulated
	// hosts' evidence as it comes.
	Check func(host string, ev trustack.Evidence, nonce []byte, st HostState, wl *trustack.Whitelist) (trustack.Verdict, HostState)
}

// Service is the attestation verifier (the DC-S): it registers hosts'
// TPMs, attests each host on a timer and when its measurer records
// something new, keeps white-lists, and applies verdicts to compute. It
// is safe for concurrent use.
type Service struct {
	store     Store
	hosts     Hosts
	enforcer  Enforcer
	conn      *bus.Conn
	attesters *wire.Attesters
	opts      Options
	id        string // names this verifier's activation subject

	mu      sync.Mutex
	pending map[string]*pending      // challenges by ID
	creds   map[string]credential    // registered hosts' bus credentials, by CID
	aks     map[string]*tpm.AKPublic // parsed AKs, by CID
	loops   map[string]chan struct{} // per host: a round is wanted now
	held    map[string]bool          // per host: this verifier attested it at its last look
	spoofed map[[2]string]time.Time  // when each host's spoof of each kind was last recorded
	runCtx  context.Context
	running sync.WaitGroup
}

// pending is a registration between its challenge and its activation.
type pending struct {
	Pending
	req wire.RegisterRequest
}

// New returns a verifier; Start loads what it knows and starts the rounds.
func New(store Store, hosts Hosts, enforcer Enforcer, conn *bus.Conn, opts Options) *Service {
	if opts.Interval == 0 {
		opts.Interval = 60 * time.Second
	}
	if opts.Grace == 0 {
		opts.Grace = 2 * opts.Interval
	}
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Check == nil {
		opts.Check = func(_ string, ev trustack.Evidence, nonce []byte, st HostState, wl *trustack.Whitelist) (trustack.Verdict, HostState) {
			return Verify(ev, nonce, st, wl)
		}
	}
	return &Service{
		store: store, hosts: hosts, enforcer: enforcer, conn: conn, attesters: wire.NewAttesters(conn), opts: opts, id: uuid.NewString(),
		pending: map[string]*pending{}, creds: map[string]credential{}, aks: map[string]*tpm.AKPublic{},
		loops: map[string]chan struct{}{}, held: map[string]bool{}, spoofed: map[[2]string]time.Time{},
	}
}

// Start loads the registered hosts' credentials, serves the agents'
// registrations and measurement events, and attests every registered
// host on its timer until ctx ends; Wait waits for the rounds to stop.
func (s *Service) Start(ctx context.Context) error {
	recs, err := s.store.HostAttestations(ctx)
	if err != nil {
		return fmt.Errorf("attest: load hosts: %w", err)
	}
	s.mu.Lock()
	s.runCtx = ctx
	s.mu.Unlock()
	s.take(recs, true)
	s.running.Add(1)
	go s.follow(ctx)
	return s.serve(ctx)
}

// take admits the registered hosts of recs, the store's, on the bus and
// attests them (those of its shard), unless it does already. A revoked
// host's credential is admitted only at start: the verifier withdraws it
// once the host's servers left, and its agent must not be let back
// meanwhile.
func (s *Service) take(recs []*trustack.HostAttestation, start bool) {
	for _, rec := range recs {
		if rec.CID == "" {
			continue
		}
		s.mu.Lock()
		_, known := s.creds[rec.CID]
		s.mu.Unlock()
		if !known && (start || !rec.Revoked) {
			if err := s.admit(rec); err != nil {
				s.opts.Log.Error("registered host has a bad credential key; it must register again", "host", rec.Host, "error", err)
				continue
			}
		}
		s.watch(rec.Host)
	}
}

// follow takes, every interval until ctx ends, the hosts as the store has
// them, which other verifiers sharing it register, revoke and forget:
// new ones are taken, and the credentials of those forgotten or
// registered again withdrawn (those held before the store was read: one
// admitted since is newer than what was read).
func (s *Service) follow(ctx context.Context) {
	defer s.running.Done()
	tick := time.NewTicker(s.opts.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s.mu.Lock()
		held := slices.Collect(maps.Keys(s.creds))
		s.mu.Unlock()
		recs, err := s.store.HostAttestations(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.opts.Log.Error("attest: load hosts", "error", err)
			}
			continue
		}
		s.take(recs, false)
		stored := make(map[string]bool, len(recs))
		for _, r := range recs {
			stored[r.CID] = true
		}
		for _, cid := range held {
			if !stored[cid] {
				s.forget(cid)
			}
		}
	}
}

// Wait waits for the rounds started by Start to stop, after its context
// ended.
func (s *Service) Wait() { s.running.Wait() }

// AttestSoon has the host attested now rather than at its next round: its
// agent joined, or something it depends on changed.
func (s *Service) AttestSoon(host string) {
	s.mu.Lock()
	soon := s.loops[host]
	s.mu.Unlock()
	if soon != nil {
		select {
		case soon <- struct{}{}:
		default: // a round is due already
		}
	}
}

// watch makes sure the host is attested on its timer.
func (s *Service) watch(host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loops[host] == nil && s.runCtx != nil {
		ch := make(chan struct{}, 1)
		s.loops[host] = ch
		s.running.Add(1)
		go s.loop(s.runCtx, host, ch)
	}
}

// loop attests a host on its timer, and whenever asked, until ctx ends.
// The first round comes at a random point of the first interval, so that
// hosts known at start do not all come at once.
func (s *Service) loop(ctx context.Context, host string, soon chan struct{}) {
	defer s.running.Done()
	timer := time.NewTimer(time.Duration(mathrand.Int64N(int64(s.opts.Interval))))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-soon:
			timer.Stop()
		}
		owns := s.opts.Shard == nil || s.opts.Shard.Owns(host)
		s.mu.Lock()
		s.held[host] = owns
		s.mu.Unlock()
		if owns {
			// A host forgotten is attested again once it registers
			// again.
			if err := s.Attest(ctx, host); err != nil && ctx.Err() == nil && trustack.ErrorCode(err) != trustack.ENOTFOUND {
				s.opts.Log.Error("attest host", "host", host, "error", err)
			}
		}
		timer.Reset(s.nextRound())
	}
}

// Reshard has the hosts this verifier took from others, now that the
// live controllers changed, attested at once: their last round, by a
// controller gone, may be nearly an interval old.
func (s *Service) Reshard() {
	if s.opts.Shard == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for host, soon := range s.loops {
		if !s.held[host] && s.opts.Shard.Owns(host) {
			select {
			case soon <- struct{}{}:
			default:
			}
		}
	}
}

// nextRound is the time to a host's next round: the interval, give or
// take 10%.
func (s *Service) nextRound() time.Duration {
	i := s.opts.Interval
	return i - i/10 + time.Duration(mathrand.Int64N(int64(i/5)+1))
}

// errStale is UpdateHostAttestation's error when the host's record moved
// on during a round (it registered again, another verifier's round
// landed first): the round's outcome is dropped.
var errStale = errors.New("the host's record changed during the round")

// Attest runs one round for a host (Protocol 12.2): a fresh nonce, the
// agent's quote and log, Verify against the host's white-list, and the
// verdict recorded and applied. A revoked host is not attested; its
// round checks whether its servers have left, to withdraw its bus
// credentials then.
func (s *Service) Attest(ctx context.Context, host string) error {
	rec, err := s.store.HostAttestation(ctx, host)
	if err != nil {
		return err
	}
	if rec.CID == "" {
		return nil
	}
	if rec.Revoked {
		return s.apply(ctx, rec)
	}
	st, cp, err := s.state(rec)
	if err != nil {
		return err
	}
	wl, err := s.whitelistFor(ctx, host)
	if err != nil {
		return err
	}
	if fp := whitelistFingerprint(wl); fp != cp.Whitelist {
		// Entries verified against another white-list, or another
		// version of it, are verified again from the log's start.
		st.Replay = ima.State{}
		cp.Whitelist = fp
	}
	req := wire.EvidenceRequest{FromEntry: st.Replay.Entries, Boot: cp.Boot, Attested: st.Attested}
	rep, err := s.requestEvidence(ctx, host, &req)
	var v trustack.Verdict
	next := st
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		v = trustack.Verdict{State: trustack.VerdictUnreachable, Reasons: []string{fmt.Sprintf("The host did not answer the attestation request: %s.", trustack.ErrorMessage(err))}}
		if wl != nil {
			v.Whitelist = wl.Name
		}
	} else {
		v, next = s.opts.Check(host, rep.Evidence, req.Nonce, st, wl)
		cp.Boot = rep.Boot
	}
	v.At = s.opts.Now().UTC()
	return s.record(ctx, rec, v, next, cp)
}

// requestEvidence asks a host's agent for evidence for req, with a fresh
// nonce it sets in req, for Timeout at most. An agent that joins again
// while the request waits (it reconnected to another node of the bus,
// and the request may have been lost with the node it left) is asked
// again at once, up to wire.MaxRejoins times, rather than when the
// request times out: a round lost that way would leave the host without a
// verdict for longer than its interval.
func (s *Service) requestEvidence(ctx context.Context, host string, req *wire.EvidenceRequest) (wire.EvidenceReply, error) {
	joined := func(ctx context.Context) (*trustack.Host, error) { return s.hosts.HostByName(ctx, host) }
	for rejoins := 0; ; rejoins++ {
		nonce, err := NewNonce(s.opts.Rand)
		if err != nil {
			return wire.EvidenceReply{}, err
		}
		req.Nonce = nonce
		var rep wire.EvidenceReply
		rejoined, err := wire.AskWhileJoined(ctx, wire.RejoinLook, joined, func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
			defer cancel()
			var asked error
			rep, asked = s.attesters.Evidence(ctx, host, *req)
			return asked
		})
		if err == nil || !rejoined || rejoins == wire.MaxRejoins || ctx.Err() != nil {
			return rep, err
		}
		s.opts.Log.Info("a host's agent joined again while an attestation request waited: asking it again", "host", host)
	}
}

// event records an event, logging a failure to: events inform, they
// decide nothing.
// spoofQuiet is how long a host's spoofs of a kind go unrecorded once one
// is recorded, so that a host cannot fill the store with events.
const spoofQuiet = time.Minute

// Spoofed records a message that a host's agent sent about another host,
// dropped, as an event of the sender's. It is a wire.Witness.
func (s *Service) Spoofed(ctx context.Context, sp wire.Spoof) {
	now := s.opts.Now().UTC()
	key := [2]string{sp.Sender, sp.What}
	s.mu.Lock()
	last, seen := s.spoofed[key]
	if !seen || now.Sub(last) >= spoofQuiet {
		s.spoofed[key] = now
	}
	s.mu.Unlock()
	if seen && now.Sub(last) < spoofQuiet {
		return
	}
	s.opts.Log.Warn("dropped a host's message about another host", "sender", sp.Sender, "named", sp.Named, "message", sp.What)
	s.event(ctx, trustack.AttestationEvent{Host: sp.Sender, At: now, Kind: trustack.EventSpoofed,
		Message: fmt.Sprintf("Host %s sent a %s naming host %s; it was dropped, since an agent speaks only for its own host.", sp.Sender, sp.What, sp.Named)})
}

func (s *Service) event(ctx context.Context, events ...trustack.AttestationEvent) {
	if err := s.store.AddAttestationEvents(ctx, events...); err != nil {
		s.opts.Log.Error("record attestation events", "error", err)
	}
}

// record stores a round's verdict and applies it, with the events it
// makes.
func (s *Service) record(ctx context.Context, rec *trustack.HostAttestation, v trustack.Verdict, next HostState, cp checkpoint) error {
	v.By = s.opts.Name
	var events []trustack.AttestationEvent
	event := func(kind, msg string) {
		events = append(events, trustack.AttestationEvent{Host: rec.Host, At: v.At, Kind: kind, Message: msg})
	}
	updated, err := s.store.UpdateHostAttestation(ctx, rec.Host, func(cur *trustack.HostAttestation) (*trustack.HostAttestation, error) {
		if cur == nil || cur.CID != rec.CID || cur.Version != rec.Version {
			return nil, errStale
		}
		events = events[:0]
		prev := cur.Verdict
		cur.Verdict = v
		switch v.State {
		case trustack.VerdictTrusted:
			cur.FailingSince = time.Time{}
			cur.Checkpoint = encodeCheckpoint(next, cp.Boot, cp.Whitelist)
		default:
			if cur.FailingSince.IsZero() {
				cur.FailingSince = v.At
			}
		}
		if prev.State != v.State || v.State == trustack.VerdictUntrusted {
			event(eventKind(v.State), verdictMessage(rec.Host, v))
		}
		switch {
		case v.State == trustack.VerdictUntrusted:
			cur.Revoked = true
		case v.State == trustack.VerdictUnreachable && v.At.Sub(cur.FailingSince) >= s.opts.Grace:
			cur.Revoked = true
		}
		if cur.Revoked {
			event(trustack.EventRevoked, fmt.Sprintf("Host %s is out of scheduling and its servers are migrated to trusted hosts: it %s. It must register again to come back.", rec.Host, failure(v)))
		}
		return cur, nil
	})
	if errors.Is(err, errStale) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("record verdict: %w", err)
	}
	s.event(ctx, events...)
	level := slog.LevelDebug
	if len(events) > 0 {
		level = slog.LevelInfo
	}
	s.opts.Log.Log(ctx, level, "host attested", "host", rec.Host, "verdict", v.State, "whitelist", v.Whitelist, "reasons", v.Reasons)
	if updated.Revoked {
		s.notify(ctx, rec.Host, wire.Notice{Revoked: true, Reason: failure(v)})
	}
	if v.State == trustack.VerdictUnreachable && !updated.Revoked {
		return nil // within the grace period, the host keeps its place
	}
	return s.apply(ctx, updated)
}

// apply tells compute what a host's record means for scheduling, and
// withdraws the bus credentials of a revoked host once its servers left.
func (s *Service) apply(ctx context.Context, rec *trustack.HostAttestation) error {
	var rcot, hold string
	switch {
	case rec.Revoked:
		hold = fmt.Sprintf("it %s; it must register again", failure(rec.Verdict))
	case rec.Verdict.State == "":
		hold = "waiting for its first attestation"
	case rec.Verdict.State == trustack.VerdictTrusted:
		rcot = rec.Verdict.Whitelist
	default:
		return nil
	}
	err := s.enforcer.ApplyAttestation(ctx, rec.Host, rcot, hold)
	switch {
	case trustack.ErrorCode(err) == trustack.ENOTFOUND:
		return nil // its agent has not joined yet
	case err != nil:
		return fmt.Errorf("apply attestation: %w", err)
	case !rec.Revoked:
		return nil
	}
	servers, err := s.enforcer.HostServers(ctx, rec.Host)
	if err != nil || servers > 0 {
		return err
	}
	return s.withdraw(ctx, rec)
}

// withdraw takes a revoked host's identity and bus credentials away, now
// that it runs no servers: its agent is disconnected and refused.
func (s *Service) withdraw(ctx context.Context, rec *trustack.HostAttestation) error {
	_, err := s.store.UpdateHostAttestation(ctx, rec.Host, func(cur *trustack.HostAttestation) (*trustack.HostAttestation, error) {
		if cur == nil || cur.CID != rec.CID {
			return nil, errStale
		}
		cur.CID = ""
		return cur, nil
	})
	if errors.Is(err, errStale) {
		return nil
	}
	if err != nil {
		return err
	}
	s.forget(rec.CID)
	s.announce(wire.CredentialChange{Host: rec.Host, CID: rec.CID, Withdrawn: true})
	s.opts.Log.Info("revoked host disconnected from the bus", "host", rec.Host)
	return nil
}

// notify tells a host's agent about its revocation; the agent may be
// gone, which the bus disconnection covers.
func (s *Service) notify(ctx context.Context, host string, n wire.Notice) {
	rctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	if err := s.attesters.Notify(rctx, host, n); err != nil {
		s.opts.Log.Warn("tell a revoked host's agent", "host", host, "error", err)
	}
}

// whitelistFor returns the white-list the host is held to: the one its
// physical domain's DCoT names; nil for a host in no domain, in one
// without a DCoT, or whose DCoT names no white-list (its quote and log
// are checked, its files are not, and it proves no chain of trust).
func (s *Service) whitelistFor(ctx context.Context, host string) (*trustack.Whitelist, error) {
	h, err := s.hosts.HostByName(ctx, host)
	if trustack.ErrorCode(err) == trustack.ENOTFOUND {
		return nil, nil
	}
	if err != nil || h.Domain == "" {
		return nil, err
	}
	d, err := s.hosts.PhysicalDomain(ctx, h.Domain)
	if err != nil || d.DCoT == "" {
		return nil, err
	}
	wl, err := s.store.Whitelist(ctx, d.DCoT)
	if trustack.ErrorCode(err) == trustack.ENOTFOUND {
		// A DCoT that names no white-list is met by no host; the host
		// is still attested, against none.
		s.opts.Log.Warn("a physical domain's DCoT names no white-list", "domain", d.Name, "dcot", d.DCoT, "host", host)
		return nil, nil
	}
	return wl, err
}

func eventKind(state string) string {
	switch state {
	case trustack.VerdictTrusted:
		return trustack.EventTrusted
	case trustack.VerdictUntrusted:
		return trustack.EventUntrusted
	}
	return trustack.EventUnreachable
}

// verdictMessage is a verdict in a sentence or a few.
func verdictMessage(host string, v trustack.Verdict) string {
	msg := fmt.Sprintf("Host %s is %s", host, v.State)
	if v.Whitelist != "" {
		msg += fmt.Sprintf(" (white-list %s)", v.Whitelist)
	}
	msg += "."
	for _, r := range v.Reasons {
		msg += " " + r
	}
	return msg
}

// failure says how a host failed, after "it".
func failure(v trustack.Verdict) string {
	if v.State == trustack.VerdictUnreachable {
		return "did not answer attestation requests for longer than the grace period"
	}
	if len(v.Reasons) == 0 {
		return "failed attestation"
	}
	return "failed attestation: " + strings.TrimSuffix(v.Reasons[0], ".")
}

// RequirementsChanged has every host attested soon: the physical
// domains, which decide the white-list each host is held to, changed. It
// makes the verifier an acaas.Enforcer.
func (s *Service) RequirementsChanged() {
	s.mu.Lock()
	hosts := slices.Collect(maps.Keys(s.loops))
	s.mu.Unlock()
	for _, h := range hosts {
		s.AttestSoon(h)
	}
}
