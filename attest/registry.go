package attest

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/bus"
	"github.com/trustack/trustack/tpm"
	"github.com/trustack/trustack/wire"
)

// Registration over the bus, and the bus credentials it issues: an agent
// connects without credentials under a "reg-" user of its choosing, which
// may only send the registration requests; once its TPM proved it holds
// the EK and the AK, the host gets an identity (CID), and from then on
// connects as that CID, signing the bus's nonce with its PCR-bound
// credential key. Its grant lets it use its own host's subjects only.

// credential is a registered host's bus credential.
type credential struct {
	host string
	key  *ecdsa.PublicKey
}

// admit accepts a registered host's credential key on the bus.
func (s *Service) admit(rec *trustack.HostAttestation) error {
	pub, err := x509.ParsePKIXPublicKey(rec.CredentialKey)
	if err != nil {
		return trustack.Errorf(trustack.EINVALID, "the credential key is malformed: %v", err)
	}
	key, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return trustack.Errorf(trustack.EINVALID, "the credential key is a %T, want an ECDSA key", pub)
	}
	s.mu.Lock()
	s.creds[rec.CID] = credential{host: rec.Host, key: key}
	s.mu.Unlock()
	return nil
}

// forget withdraws a CID's bus credential and closes its connections.
func (s *Service) forget(cid string) {
	s.mu.Lock()
	delete(s.creds, cid)
	delete(s.aks, cid)
	s.mu.Unlock()
	if s.opts.Disconnect != nil {
		s.opts.Disconnect(cid)
	}
}

// announce tells the other verifiers of a credential change this one
// made, so that their bus nodes admit or refuse the host at once; should
// the message be lost, they learn of it from the store within an
// interval (follow).
func (s *Service) announce(c wire.CredentialChange) {
	if err := wire.AnnounceCredential(s.conn, c); err != nil {
		s.opts.Log.Warn("tell the other verifiers of a credential change", "host", c.Host, "error", err)
	}
}

// CredentialChanged applies a credential change a verifier announced
// (this one among them): a withdrawn credential is forgotten, an issued
// one admitted once the store has it.
func (s *Service) CredentialChanged(ctx context.Context, c wire.CredentialChange) {
	if c.Withdrawn {
		s.forget(c.CID)
		return
	}
	rec, err := s.store.HostAttestation(ctx, c.Host)
	if err != nil {
		s.opts.Log.Warn("read a host's credential another verifier issued", "host", c.Host, "error", err)
		return
	}
	if rec.CID == c.CID {
		s.take([]*trustack.HostAttestation{rec}, false)
	}
}

var registrationUser = regexp.MustCompile(`^` + wire.RegistrationUserPrefix + `[A-Za-z0-9_-]{8,64}$`)

// Authenticate decides what a client of the embedded bus may do: an
// agent registering may send registrations; a registered host, having
// signed the bus's nonce with its credential key, may use its host's
// subjects. Anyone else is refused. It is a bus.Authenticator.
func (s *Service) Authenticate(c bus.Credentials) (bus.Grant, bool) {
	if c.Key == "" {
		if !registrationUser.MatchString(c.User) {
			return bus.Grant{}, false
		}
		return bus.Grant{Name: c.User, Publish: wire.RegistrationGrant()}, true
	}
	s.mu.Lock()
	cred, ok := s.creds[c.Key]
	s.mu.Unlock()
	if !ok || c.User != c.Key || len(c.Nonce) == 0 {
		return bus.Grant{}, false
	}
	digest := sha256.Sum256(c.Nonce)
	if !ecdsa.VerifyASN1(cred.key, digest[:], c.Signature) {
		return bus.Grant{}, false
	}
	g := bus.Grant{Name: c.Key}
	g.Publish, g.Subscribe = wire.HostGrant(cred.host)
	return g, true
}

// serve answers agents on the bus until ctx ends (see
// wire.ServeVerifier).
func (s *Service) serve(ctx context.Context) error {
	stop, err := wire.ServeVerifier(s.conn, s.id, s, s.Spoofed)
	if err != nil {
		return fmt.Errorf("attest: serve agents: %w", err)
	}
	s.running.Add(1)
	go func() {
		defer s.running.Done()
		<-ctx.Done()
		stop()
	}()
	return nil
}

// Measured has a host whose measurer recorded something new attested at
// once.
func (s *Service) Measured(host string) { s.AttestSoon(host) }

// Fingerprint identifies an EK by its certificate: the SHA-256 of its
// DER, in hex, as operators approve it.
func Fingerprint(ekCert []byte) string {
	sum := sha256.Sum256(ekCert)
	return hex.EncodeToString(sum[:])
}

var hostName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$`)

// Register checks an agent's registration and returns its challenge. The
// EK certificate must chain to a configured manufacturer CA, or an
// operator must have approved it (forbidden otherwise, recorded as an
// event); a host name registered with another TPM is a conflict until an
// operator forgets the host.
func (s *Service) Register(ctx context.Context, req wire.RegisterRequest) (wire.RegisterChallenge, error) {
	if !hostName.MatchString(req.Host) {
		return wire.RegisterChallenge{}, trustack.Errorf(trustack.EINVALID, "A host name must be letters, digits, dots, dashes and underscores, not %q.", req.Host)
	}
	if req.Mode != trustack.MeasuredByKernel && req.Mode != trustack.MeasuredInUserspace {
		return wire.RegisterChallenge{}, trustack.Errorf(trustack.EINVALID, "Unknown measurement mode %q: want %s or %s.", req.Mode, trustack.MeasuredByKernel, trustack.MeasuredInUserspace)
	}
	if _, err := x509.ParsePKIXPublicKey(req.CredentialKey); err != nil {
		return wire.RegisterChallenge{}, trustack.Errorf(trustack.EINVALID, "The credential key is malformed: %v.", err)
	}
	now := s.opts.Now().UTC()
	fp := Fingerprint(req.EKCert)
	refuse := func(err error) (wire.RegisterChallenge, error) {
		s.opts.Log.Warn("host registration refused", "host", req.Host, "ek", fp, "error", err)
		s.event(ctx, trustack.AttestationEvent{Host: req.Host, At: now, Kind: trustack.EventRefused,
			Message: fmt.Sprintf("Host %s could not register its TPM (EK %s): %s", req.Host, fp, trustack.ErrorMessage(err))})
		return wire.RegisterChallenge{}, err
	}
	rec, err := s.store.HostAttestation(ctx, req.Host)
	switch {
	case trustack.ErrorCode(err) == trustack.ENOTFOUND:
	case err != nil:
		return wire.RegisterChallenge{}, err
	case rec.CID != "" && Fingerprint(rec.EKCert) != fp:
		return refuse(trustack.Errorf(trustack.ECONFLICT, "Host %s is registered with another TPM; an operator must forget the host (trustack manage host forget %s) before another TPM can take its name.", req.Host, req.Host))
	case rec.Revoked && rec.Verdict.State == trustack.VerdictUntrusted:
		// One revoked for being unreachable may come back by itself:
		// nothing said it was compromised, and its servers went
		// elsewhere, which its agent settles as it joins.
		return refuse(trustack.Errorf(trustack.EFORBIDDEN, "Host %s was revoked for failing attestation; once it is fixed, an operator forgets it (trustack manage host forget %s) and it registers again.", req.Host, req.Host))
	}
	reg := Registration{EKCert: req.EKCert, EKIntermediates: req.EKIntermediates, AKPublic: req.AKPublic}
	p, cred, err := Challenge(reg, s.opts.Roots, s.opts.Intermediates, now, s.opts.Rand)
	if errors.Is(err, ErrEKNotApproved) {
		p, cred, err = s.challengeApproved(ctx, reg, fp, now, err)
	}
	if err != nil {
		return refuse(err)
	}
	id := uuid.NewString()
	s.mu.Lock()
	for k, old := range s.pending {
		if !now.Before(old.Expires) {
			delete(s.pending, k)
		}
	}
	s.pending[id] = &pending{Pending: p, req: req}
	s.mu.Unlock()
	return wire.RegisterChallenge{ID: id, Subject: wire.ActivateSubject(s.id), IDObject: cred.IDObject, EncryptedSecret: cred.EncSecret}, nil
}

// challengeApproved makes the challenge of an EK whose certificate does
// not chain to a manufacturer CA, if an operator approved it; otherwise
// it returns refused, the chain's error.
func (s *Service) challengeApproved(ctx context.Context, reg Registration, fp string, now time.Time, refused error) (Pending, *tpm.Credential, error) {
	if _, err := s.store.ApprovedEK(ctx, fp); err != nil {
		if trustack.ErrorCode(err) == trustack.ENOTFOUND {
			return Pending{}, nil, trustack.Errorf(trustack.EFORBIDDEN, "%s If this TPM is yours, approve it with: trustack manage ek approve %s", ErrEKNotApproved.Message, fp)
		}
		return Pending{}, nil, err
	}
	cert, err := x509.ParseCertificate(reg.EKCert)
	if err != nil {
		return Pending{}, nil, refused
	}
	// An approved certificate is its own root.
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return Challenge(reg, roots, nil, now, s.opts.Rand)
}

// Activate checks an agent's answer to its challenge; on success the host
// is registered: a new CID, its AK certified, its credential key admitted
// on the bus, and its first attestation under way. A host registered
// before starts over (its verdicts so far no longer count).
func (s *Service) Activate(ctx context.Context, req wire.ActivateRequest) (wire.ActivateReply, error) {
	s.mu.Lock()
	p := s.pending[req.ID]
	delete(s.pending, req.ID)
	s.mu.Unlock()
	if p == nil {
		return wire.ActivateReply{}, trustack.Errorf(trustack.EFORBIDDEN, "Unknown or used registration challenge: the agent must register again.")
	}
	now := s.opts.Now().UTC()
	st, err := Complete(p.Pending, req.Secret, now)
	if err != nil {
		s.event(ctx, trustack.AttestationEvent{Host: p.req.Host, At: now, Kind: trustack.EventRefused,
			Message: fmt.Sprintf("Host %s could not register: %s", p.req.Host, trustack.ErrorMessage(err))})
		return wire.ActivateReply{}, err
	}
	cid := uuid.NewString()
	var old string
	rec, err := s.store.UpdateHostAttestation(ctx, p.req.Host, func(cur *trustack.HostAttestation) (*trustack.HostAttestation, error) {
		if cur == nil {
			cur = &trustack.HostAttestation{Host: p.req.Host}
		}
		old = cur.CID
		*cur = trustack.HostAttestation{
			Host: p.req.Host, CID: cid, RegisteredAt: now, Version: cur.Version,
			EKCert: p.EKCert.Raw, AKPublic: p.AK.Bytes(), CredentialKey: p.req.CredentialKey, Mode: p.req.Mode,
			Checkpoint: encodeCheckpoint(st, 0, ""),
		}
		return cur, nil
	})
	if err != nil {
		return wire.ActivateReply{}, fmt.Errorf("attest: record registration: %w", err)
	}
	if old != "" {
		s.forget(old)
		s.announce(wire.CredentialChange{Host: rec.Host, CID: old, Withdrawn: true})
	}
	if err := s.admit(rec); err != nil {
		return wire.ActivateReply{}, err
	}
	s.announce(wire.CredentialChange{Host: rec.Host, CID: cid})
	mode := "the kernel's IMA log"
	if rec.Mode == trustack.MeasuredInUserspace {
		mode = "the agent's userspace measurer (weaker: only the files it is configured to measure)"
	}
	s.event(ctx, trustack.AttestationEvent{Host: rec.Host, At: now, Kind: trustack.EventRegistered,
		Message: fmt.Sprintf("Host %s registered its TPM (EK %s, %s); its measurements come from %s.", rec.Host, Fingerprint(rec.EKCert)[:16], ekSubject(p.EKCert), mode)})
	s.opts.Log.Info("host registered", "host", rec.Host, "cid", cid, "mode", rec.Mode)
	// Its first round comes when its agent joins compute
	// (AttestSoon), or on its timer.
	s.watch(rec.Host)
	return wire.ActivateReply{CID: cid}, nil
}

func ekSubject(c *x509.Certificate) string {
	if s := c.Issuer.String(); s != "" {
		return "issued by " + s
	}
	return "issuer unnamed"
}

// Forget removes a host's record and events: its bus credential is
// withdrawn, and the name is free for another TPM. ENOTFOUND.
func (s *Service) Forget(ctx context.Context, host string) error {
	rec, err := s.store.HostAttestation(ctx, host)
	if err != nil {
		return err
	}
	if err := s.store.DeleteHostAttestation(ctx, host); err != nil {
		return err
	}
	if rec.CID != "" {
		s.forget(rec.CID)
		s.announce(wire.CredentialChange{Host: host, CID: rec.CID, Withdrawn: true})
	}
	return nil
}

// ApproveEK lets a TPM whose EK certificate does not chain to a
// configured manufacturer CA register, by its certificate's fingerprint
// (64 hex digits, as registration refusals name it).
func (s *Service) ApproveEK(ctx context.Context, fingerprint, comment string) (*trustack.ApprovedEK, error) {
	fingerprint = strings.ToLower(fingerprint)
	if b, err := hex.DecodeString(fingerprint); err != nil || len(b) != sha256.Size {
		return nil, trustack.Errorf(trustack.EINVALID, "An EK fingerprint is the SHA-256 of its certificate in 64 hex digits, not %q.", fingerprint)
	}
	ek := &trustack.ApprovedEK{Fingerprint: fingerprint, Comment: comment, ApprovedAt: s.opts.Now().UTC()}
	return ek, s.store.ApproveEK(ctx, ek)
}

// ApprovedEKs returns the EKs operators approved.
func (s *Service) ApprovedEKs(ctx context.Context) ([]*trustack.ApprovedEK, error) {
	return s.store.ApprovedEKs(ctx)
}

// RevokeEK withdraws an approval: the TPM can no longer register (hosts
// registered with it stay until they register again). ENOTFOUND.
func (s *Service) RevokeEK(ctx context.Context, fingerprint string) error {
	return s.store.RevokeEK(ctx, strings.ToLower(fingerprint))
}

// HostAttestations returns every host's record, by host name.
func (s *Service) HostAttestations(ctx context.Context) ([]*trustack.HostAttestation, error) {
	return s.store.HostAttestations(ctx)
}

// HostAttestation returns a host's record; ENOTFOUND for a host that
// never registered.
func (s *Service) HostAttestation(ctx context.Context, host string) (*trustack.HostAttestation, error) {
	return s.store.HostAttestation(ctx, host)
}

// Events returns a host's latest events (all for limit 0), oldest first.
func (s *Service) Events(ctx context.Context, host string, limit int) ([]trustack.AttestationEvent, error) {
	return s.store.AttestationEvents(ctx, host, limit)
}
