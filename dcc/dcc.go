// Package dcc is the compute host's side of attestation (the DC-C): it
// opens the host's TPM, keeps its attestation key and its PCR-bound
// credential key in the host's directory, registers the TPM with the
// verifier (Protocol 12.1) to get onto the bus, measures the host (the
// kernel's IMA log when it can read it, else its own userspace measurer
// extending PCR 10), and answers the verifier's evidence requests with a
// quote and the log entries the verifier has not seen (Protocol 12.2).
package dcc

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/bus"
	"github.com/trustack/trustack/ima"
	"github.com/trustack/trustack/tpm"
	"github.com/trustack/trustack/wire"
)

// DefaultKernelLog is where the kernel publishes its IMA log.
const DefaultKernelLog = "/sys/kernel/security/ima/binary_runtime_measurements"

// Config configures a host's DC-C.
type Config struct {
	// Host is the compute host's name.
	Host string
	// Dir is the host's directory, where the keys and the userspace
	// measurer's log are kept.
	Dir string
	// TPM is the TPM's address for tpm.Open: a device such as
	// /dev/tpmrm0, or "swtpm:COMMAND,CONTROL".
	TPM string
	// KernelLog is the kernel's binary IMA log (default
	// DefaultKernelLog); if it cannot be read, the userspace measurer
	// measures Files instead.
	KernelLog string
	// Files are the files the userspace measurer measures: absolute
	// paths or glob patterns.
	Files []string
	// MeasureInterval is how often the userspace measurer looks for
	// changed files (default 10 s).
	MeasureInterval time.Duration
	// Log receives what the DC-C does (default: discarded).
	Log *slog.Logger
}

// DCC is a host's DC-C. It is safe for concurrent use.
type DCC struct {
	cfg Config
	tpm *tpm.TPM
	ek  *tpm.EK
	ak  *tpm.AK

	// quoting serialises quotes with the measurer's extends, so that the
	// PCR values read with a quote are the quoted ones.
	quoting sync.Mutex
	meas    *measurer // nil in kernel mode

	mu      sync.Mutex
	key     *tpm.PCRKey
	boot    uint32 // the TPM's reset count at Open
	refusal error  // why the host takes no work, once revoked
}

// Open opens the host's TPM and prepares its keys and measurements: the
// AK kept in Dir (made on first use), the credential key (made again if
// the boot PCRs changed since, which makes the host register again), and
// the kernel's log or the userspace measurer, which measures Files now.
func Open(cfg Config) (*DCC, error) {
	if cfg.KernelLog == "" {
		cfg.KernelLog = DefaultKernelLog
	}
	if cfg.MeasureInterval == 0 {
		cfg.MeasureInterval = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	dir := filepath.Join(cfg.Dir, "tpm")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("dcc: %w", err)
	}
	t, err := tpm.Open(cfg.TPM)
	if err != nil {
		return nil, fmt.Errorf("dcc: open TPM %s: %w", cfg.TPM, err)
	}
	d := &DCC{cfg: cfg, tpm: t}
	if err := d.open(dir); err != nil {
		t.Close()
		return nil, err
	}
	return d, nil
}

func (d *DCC) open(dir string) error {
	eks, err := d.tpm.EKs()
	if err != nil {
		return fmt.Errorf("dcc: endorsement keys: %w", err)
	}
	for _, ek := range eks {
		if ek.Cert != nil {
			d.ek = ek
			break
		}
	}
	if d.ek == nil {
		return trustack.Errorf(trustack.EINVALID, "dcc: the TPM has no endorsement key with a certificate, which registration needs")
	}
	akFile := filepath.Join(dir, "ak.json")
	d.ak, err = d.tpm.LoadAK(akFile)
	if trustack.ErrorCode(err) == trustack.ENOTFOUND {
		if d.ak, err = d.tpm.CreateAK(); err == nil {
			err = d.ak.Save(akFile)
		}
	}
	if err != nil {
		return fmt.Errorf("dcc: attestation key: %w", err)
	}
	clock, err := d.tpm.Clock()
	if err != nil {
		return err
	}
	d.boot = clock.ResetCount
	if err := d.loadCredentialKey(); err != nil {
		return err
	}
	if _, err := os.ReadFile(d.cfg.KernelLog); err == nil {
		d.cfg.Log.Info("measurements come from the kernel's IMA log", "log", d.cfg.KernelLog)
		return nil
	}
	d.cfg.Log.Warn("the kernel's IMA log cannot be read: measuring in userspace, which sees only the configured files (the host's record says so)",
		"log", d.cfg.KernelLog, "files", d.cfg.Files)
	d.meas, err = openMeasurer(d.tpm, filepath.Join(dir, "measurements"), d.boot, d.cfg.Files)
	if err != nil {
		return err
	}
	if _, err := d.meas.measure(); err != nil {
		d.cfg.Log.Warn("measure files", "error", err)
	}
	return nil
}

// loadCredentialKey loads the credential key, or makes a new one bound to
// the boot PCRs as they are now if there is none or the old one no longer
// works (the host booted into another state).
func (d *DCC) loadCredentialKey() error {
	path := filepath.Join(d.cfg.Dir, "tpm", "credential-key.json")
	key, err := d.tpm.LoadPCRKey(path)
	if err == nil {
		digest := sha256.Sum256([]byte("trustack credential key check"))
		if _, err = d.tpm.Sign(key, digest[:]); errors.Is(err, tpm.ErrPCRPolicy) {
			d.cfg.Log.Warn("the boot PCRs changed since the credential key was made: making a new one; the host registers again")
		}
	}
	if err != nil && trustack.ErrorCode(err) != trustack.ENOTFOUND && !errors.Is(err, tpm.ErrPCRPolicy) {
		return fmt.Errorf("dcc: credential key: %w", err)
	}
	if err != nil {
		if key, err = d.tpm.CreatePCRKey(tpm.BootPCRs); err != nil {
			return fmt.Errorf("dcc: credential key: %w", err)
		}
		if err := key.Save(path); err != nil {
			return err
		}
	}
	d.mu.Lock()
	d.key = key
	d.mu.Unlock()
	return nil
}

// Close closes the TPM.
func (d *DCC) Close() error { return d.tpm.Close() }

// Mode is how the host is measured: trustack.MeasuredByKernel or
// trustack.MeasuredInUserspace.
func (d *DCC) Mode() string {
	if d.meas == nil {
		return trustack.MeasuredByKernel
	}
	return trustack.MeasuredInUserspace
}

// Dial connects to the bus with the given options added.
type Dial func(opts ...bus.Option) (*bus.Conn, error)

// Join registers the host's TPM with a verifier and returns a bus
// connection authenticated with the credential key. It tries again,
// waiting twice as long each time, while no verifier answers (up to 10 s
// between tries) and while the verifier refuses the TPM (up to a minute:
// until an operator approves its EK, or forgets the host that another
// TPM holds or that was revoked). An invalid registration is returned.
func (d *DCC) Join(ctx context.Context, dial Dial) (*bus.Conn, error) {
	for wait := 200 * time.Millisecond; ; wait *= 2 {
		cid, err := d.register(ctx, dial)
		if err == nil {
			return d.connect(cid, dial)
		}
		switch trustack.ErrorCode(err) {
		case trustack.EINVALID:
			return nil, err
		case trustack.EFORBIDDEN, trustack.ECONFLICT:
			wait = min(wait, time.Minute)
			d.cfg.Log.Error("the verifier refused the TPM: trying again", "error", err, "retry_in", wait)
		default:
			wait = min(wait, 10*time.Second)
			d.cfg.Log.Warn("register the TPM with a verifier", "error", err, "retry_in", wait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// register runs Protocol 12.1 on a connection that may do nothing else.
func (d *DCC) register(ctx context.Context, dial Dial) (string, error) {
	conn, err := dial(bus.Password(wire.RegistrationUserPrefix+rand.Text(), ""))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	d.mu.Lock()
	key := d.key
	d.mu.Unlock()
	credKey, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return "", err
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	verifiers := wire.NewVerifiers(conn)
	ch, err := verifiers.Register(rctx, wire.RegisterRequest{
		Host: d.cfg.Host, EKCert: d.ek.Cert.Raw, AKPublic: d.ak.Public().Bytes(), CredentialKey: credKey, Mode: d.Mode(),
	})
	if err != nil {
		return "", err
	}
	secret, err := d.tpm.ActivateCredential(d.ek.Type, d.ak, &tpm.Credential{IDObject: ch.IDObject, EncSecret: ch.EncryptedSecret})
	if err != nil {
		return "", fmt.Errorf("dcc: activate the registration credential: %w", err)
	}
	reply, err := verifiers.Activate(rctx, ch, secret)
	if err != nil {
		return "", err
	}
	d.cfg.Log.Info("TPM registered", "cid", reply.CID, "mode", d.Mode())
	// Registered anew, the host is no longer the one revoked.
	d.mu.Lock()
	d.refusal = nil
	d.mu.Unlock()
	return reply.CID, nil
}

// connect connects as the registered host, signing the bus's nonce with
// the credential key, which the TPM uses only while the boot PCRs hold.
func (d *DCC) connect(cid string, dial Dial) (*bus.Conn, error) {
	return dial(bus.SignedNonce(cid, cid, func(nonce []byte) ([]byte, error) {
		d.mu.Lock()
		key := d.key
		d.mu.Unlock()
		digest := sha256.Sum256(nonce)
		return d.tpm.Signer(key).Sign(nil, digest[:], crypto.SHA256)
	}))
}

// Serve answers the verifier's requests on conn: evidence, and the notice
// of the host's revocation.
func (d *DCC) Serve(conn *bus.Conn) (bus.Subscription, error) {
	return wire.ServeAttester(conn, d.cfg.Host, d)
}

var _ wire.Attester = (*DCC)(nil)

// Revoked takes the verifier's notice that the host was put out: it takes
// no new servers from then on.
func (d *DCC) Revoked(n wire.Notice) {
	if !n.Revoked {
		return
	}
	d.mu.Lock()
	d.refusal = trustack.Errorf(trustack.EFORBIDDEN, "Host %s failed attestation and takes no new servers: %s.", d.cfg.Host, n.Reason)
	d.mu.Unlock()
	d.cfg.Log.Error("the verifier revoked this host: it takes no new servers, and must register again (restart the agent once the host is fixed)", "reason", n.Reason)
}

// Refusal returns why the host takes no new work, nil while it does.
func (d *DCC) Refusal() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.refusal
}

// Evidence quotes the PCRs for the nonce and adds the log the verifier
// has not verified.
func (d *DCC) Evidence(_ context.Context, req wire.EvidenceRequest) (wire.EvidenceReply, error) {
	from := req.FromEntry
	if !req.Attested || req.Boot != d.boot {
		from = 0
	}
	var ev trustack.Evidence
	d.quoting.Lock()
	q, sig, err := d.tpm.Quote(d.ak, req.Nonce, tpm.QuotePCRs)
	var pcrs tpm.PCRBank
	if err == nil {
		pcrs, err = d.tpm.ReadPCRs(tpm.QuotePCRs)
	}
	d.quoting.Unlock()
	if err != nil {
		return wire.EvidenceReply{}, fmt.Errorf("dcc: quote: %w", err)
	}
	ev.Nonce, ev.Attest, ev.Signature, ev.PCRs = req.Nonce, q, sig, pcrs.Values
	// The log is read after the quote, so it holds at least the quoted
	// entries.
	entries, err := d.entries(from)
	if err != nil {
		return wire.EvidenceReply{}, err
	}
	var buf bytes.Buffer
	if err := ima.WriteBinary(&buf, entries); err != nil {
		return wire.EvidenceReply{}, err
	}
	ev.Log, ev.FromEntry = buf.Bytes(), from
	return wire.EvidenceReply{Evidence: ev, Boot: d.boot}, nil
}

// entries returns the measurement log from entry from.
func (d *DCC) entries(from int) ([]ima.Entry, error) {
	if d.meas != nil {
		return d.meas.m.Entries(from), nil
	}
	f, err := os.Open(d.cfg.KernelLog)
	if err != nil {
		return nil, fmt.Errorf("dcc: read the kernel's IMA log: %w", err)
	}
	defer f.Close()
	r := ima.NewBinaryReader(f)
	var out []ima.Entry
	for i := 0; ; i++ {
		e, err := r.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("dcc: read the kernel's IMA log: %w", err)
		}
		if i >= from {
			out = append(out, e)
		}
	}
}

// Run measures the configured files again every MeasureInterval, in
// userspace mode, and tells the verifier on conn when something new was
// measured, so that the host is attested at once. It returns when ctx
// ends.
func (d *DCC) Run(ctx context.Context, conn *bus.Conn) {
	if d.meas == nil {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(d.cfg.MeasureInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.quoting.Lock()
		added, err := d.meas.measure()
		d.quoting.Unlock()
		if err != nil {
			d.cfg.Log.Warn("measure files", "error", err)
		}
		if added > 0 {
			d.cfg.Log.Info("new measurements", "entries", added)
			if err := wire.NewVerifiers(conn).Measured(d.cfg.Host); err != nil {
				d.cfg.Log.Warn("tell the verifier of new measurements", "error", err)
			}
		}
	}
}
