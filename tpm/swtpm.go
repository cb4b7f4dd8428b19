package tpm

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/trustack/trustack"
)

// An swtpm directory, as Manufacture lays it out and Start uses it:
//
//	state/                  the TPM's state (swtpm --tpmstate)
//	swtpm_setup.conf        swtpm_setup's configuration, pointing at
//	swtpm-localca.conf      swtpm_localca's, pointing at the CA directory
//	swtpm-localca.options   the platform certificate's fields
//	swtpm.log               swtpm's log
//
// The CA directory (ca/ unless another is given) holds swtpm_localca's
// keys, certificates and serial number. Nothing outside these two
// directories is read or written: without these files swtpm_setup would
// use /etc/swtpm_setup.conf and a CA in /var/lib/swtpm-localca.
const (
	stateDir      = "state"
	stateFile     = "tpm2-00.permall" // written by swtpm_setup once manufactured
	caRootFile    = "swtpm-localca-rootca-cert.pem"
	caIssuerFile  = "issuercert.pem"
	swtpmLogFile  = "swtpm.log"
	installAdvice = "run scripts/install-deps, which installs the Debian packages swtpm and swtpm-tools"
)

// LocalCA is the certificate authority that swtpm_localca creates to sign
// the EK and platform certificates of the swtpm TPMs manufactured with it:
// the development stand-in for a TPM manufacturer's CA.
type LocalCA struct {
	// Root is the PEM file of the self-signed root certificate, the
	// one a verifier trusts.
	Root string
	// Issuer is the PEM file of the intermediate certificate that signs
	// the EK certificates. TPMs do not hold it: a verifier needs it too.
	Issuer string
}

// Pools reads the CA's certificates into pools for VerifyEKCert.
func (ca LocalCA) Pools() (roots, intermediates *x509.CertPool, err error) {
	roots, err = readCertPool(ca.Root)
	if err != nil {
		return nil, nil, err
	}
	intermediates, err = readCertPool(ca.Issuer)
	if err != nil {
		return nil, nil, err
	}
	return roots, intermediates, nil
}

func readCertPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tpm: read CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("tpm: parse CA certificate %s: %w", path, err)
		}
		pool.AddCert(cert)
	}
	return pool, nil
}

// Manufacture makes dir an swtpm TPM 2.0 as a TPM vendor would: it runs
// swtpm_setup, which creates the TPM's state with SHA-1 and SHA-256 PCR
// banks, an RSA-2048 and an ECC P-384 endorsement key and their
// certificates in NV (0x01c00002 and 0x01c00016; swtpm 0.7 makes no ECC
// P-256 EK), and a platform certificate, signed by the local CA in caDir
// ("" for dir/ca), which it creates on first use. Several TPMs may share a
// CA directory, as the TPMs of one manufacturer share a CA;
// swtpm_localca locks it. A directory manufactured already is left as it
// is, so that its TPM, and the keys made under it, survive restarts.
//
// It returns the local CA's certificate files. Errors are unavailable when
// swtpm_setup is not installed or fails.
func Manufacture(ctx context.Context, dir, caDir string) (LocalCA, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return LocalCA{}, fmt.Errorf("tpm: manufacture: %w", err)
	}
	if caDir == "" {
		caDir = filepath.Join(dir, "ca")
	}
	if caDir, err = filepath.Abs(caDir); err != nil {
		return LocalCA{}, fmt.Errorf("tpm: manufacture: %w", err)
	}
	ca := LocalCA{Root: filepath.Join(caDir, caRootFile), Issuer: filepath.Join(caDir, caIssuerFile)}
	state := StateDir(dir)
	if _, err := os.Stat(filepath.Join(state, stateFile)); err == nil {
		return ca, nil
	}
	setup, err := exec.LookPath("swtpm_setup")
	if err != nil {
		return LocalCA{}, trustack.Errorf(trustack.EUNAVAILABLE, "tpm: swtpm_setup is not installed: %s", installAdvice)
	}
	localca, err := exec.LookPath("swtpm_localca")
	if err != nil {
		return LocalCA{}, trustack.Errorf(trustack.EUNAVAILABLE, "tpm: swtpm_localca is not installed: %s", installAdvice)
	}
	for _, d := range []string{state, caDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return LocalCA{}, fmt.Errorf("tpm: manufacture: %w", err)
		}
	}
	files := map[string]string{
		"swtpm-localca.conf": fmt.Sprintf("statedir = %[1]s\nsigningkey = %[1]s/signkey.pem\nissuercert = %[1]s/%[2]s\ncertserial = %[1]s/certserial\n",
			caDir, caIssuerFile),
		"swtpm-localca.options": "--platform-manufacturer trustack\n--platform-version 1.0\n--platform-model swtpm\n",
		"swtpm_setup.conf": fmt.Sprintf("create_certs_tool = %s\ncreate_certs_tool_config = %s\ncreate_certs_tool_options = %s\nactive_pcr_banks = sha1,sha256\n",
			localca, filepath.Join(dir, "swtpm-localca.conf"), filepath.Join(dir, "swtpm-localca.options")),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return LocalCA{}, fmt.Errorf("tpm: manufacture: %w", err)
		}
	}
	cmd := exec.CommandContext(ctx, setup, "--tpm2",
		"--tpmstate", state,
		"--config", filepath.Join(dir, "swtpm_setup.conf"),
		"--create-ek-cert", "--create-platform-cert", "--lock-nvram",
		"--pcr-banks", "sha1,sha256",
		"--not-overwrite")
	// swtpm_setup reads per-user configuration from these when --config
	// is absent; point them into dir so that nothing of the user's leaks in.
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return LocalCA{}, trustack.Errorf(trustack.EUNAVAILABLE, "tpm: swtpm_setup in %s: %v: %s", dir, err, lastLines(out, 5))
	}
	return ca, nil
}

// StateDir returns where the TPM that Manufacture made in dir keeps its
// state, for swtpm run another way: as a QEMU guest's TPM, say.
func StateDir(dir string) string { return filepath.Join(dir, stateDir) }

// Copy puts a copy of the TPM that Manufacture made in from into to, for
// tests and benchmarks that need many TPMs made alike faster than
// swtpm_setup makes them: the copies share the EK and its certificate.
func Copy(from, to string) error {
	src, dst := StateDir(from), StateDir(to)
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return fmt.Errorf("tpm: copy: %w", err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("tpm: copy: %w", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return fmt.Errorf("tpm: copy: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			return fmt.Errorf("tpm: copy: %w", err)
		}
	}
	return nil
}

// Start runs swtpm on the TPM that Manufacture made in dir, listening on
// two free ports of 127.0.0.1, and returns its address for Open. swtpm
// starts the TPM itself (--flags not-need-init,startup-clear). It runs
// until ctx is done or stop is called, and dies with this process. swtpm
// serves one connection at a time: open one TPM per instance.
//
// Errors are unavailable when swtpm is not installed or does not start.
func Start(ctx context.Context, dir string) (addr string, stop func() error, err error) {
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		return "", nil, trustack.Errorf(trustack.EUNAVAILABLE, "tpm: swtpm is not installed: %s", installAdvice)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return "", nil, fmt.Errorf("tpm: start swtpm: %w", err)
	}
	if _, err := os.Stat(filepath.Join(StateDir(dir), stateFile)); err != nil {
		return "", nil, trustack.Errorf(trustack.ENOTFOUND, "tpm: no manufactured TPM in %s", dir)
	}
	// The ports are free when chosen but may be taken before swtpm binds
	// them; try again with others then.
	for attempt := 0; ; attempt++ {
		addr, stop, err := startSwtpm(ctx, bin, dir)
		if !errors.Is(err, errPortTaken) || attempt == 5 {
			return addr, stop, err
		}
	}
}

var errPortTaken = errors.New("port taken")

func startSwtpm(ctx context.Context, bin, dir string) (string, func() error, error) {
	ports, err := freePorts(2)
	if err != nil {
		return "", nil, fmt.Errorf("tpm: start swtpm: %w", err)
	}
	cmdAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	ctrlAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
	cmd := exec.CommandContext(ctx, bin, "socket", "--tpm2",
		"--tpmstate", "dir="+StateDir(dir),
		"--server", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", ports[0]),
		"--ctrl", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", ports[1]),
		"--flags", "not-need-init,startup-clear",
		"--log", "file="+filepath.Join(dir, swtpmLogFile))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// swtpm writes its state at every command, so a terminated swtpm
	// loses nothing.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return "", nil, trustack.Errorf(trustack.EUNAVAILABLE, "tpm: start swtpm: %v", err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()

	var once sync.Once
	stop := func() error {
		once.Do(func() { cmd.Process.Signal(syscall.SIGTERM) })
		<-done
		return nil
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		select {
		case <-done:
			msg := stderr.String()
			if strings.Contains(msg, "in use") {
				return "", nil, errPortTaken
			}
			return "", nil, trustack.Errorf(trustack.EUNAVAILABLE, "tpm: swtpm exited: %v: %s", waitErr, lastLines([]byte(msg), 5))
		default:
		}
		conn, err := net.DialTimeout("tcp", cmdAddr, time.Second)
		if err == nil {
			conn.Close()
			return "swtpm:" + cmdAddr + "," + ctrlAddr, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, trustack.Errorf(trustack.EUNAVAILABLE, "tpm: swtpm does not listen on %s: %v", cmdAddr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// freePorts returns n distinct TCP ports free on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// lastLines returns the last n lines of a program's output, for errors.
func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "; ")
}
