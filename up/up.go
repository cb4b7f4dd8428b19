// Package up assembles trustack from its parts, with every driver: the
// whole cloud in one process (Run, what `trustack up` runs: the
// controller, its embedded bus and N simulated compute hosts, each with
// its own swtpm), and a compute host with the drivers its configuration
// names (NewHost, what `trustack agent` runs). It is the only package that
// links the drivers.
package up

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	computeapi "github.com/trustack/trustack/api/openstack/compute"
	"github.com/trustack/trustack/bus"
	"github.com/trustack/trustack/config"
	"github.com/trustack/trustack/controller"
	"github.com/trustack/trustack/identity"
	"github.com/trustack/trustack/tpm"
)

// account is one of the accounts `trustack up` makes, with the file that
// holds its credentials for the OpenStack CLIs.
type account struct {
	file string
	identity.BootstrapAccount
}

var upAccounts = []account{
	{"openrc", identity.BootstrapAccount{Project: "admin", User: "admin", Role: "admin"}},
	{"demo-openrc", identity.BootstrapAccount{Project: "demo", User: "demo", Role: "member"}},
}

// Run runs a whole cloud in this process until ctx ends: the controller
// with its embedded bus, and nodes compute hosts named compute-1 to
// compute-N, each with its own directory under DataDir/hosts. It
// bootstraps an admin and a demo account and writes their credentials to
// DataDir/openrc and DataDir/demo-openrc. A restart on the same data
// directory keeps everything, passwords and servers included. Once it
// serves, it writes a line with "trustack ready" and the auth URL to out.
// Its cloud has an external network and, for each account, a network with
// a router to it (see addNetworks).
func Run(ctx context.Context, cfg *config.Config, nodes int, testImageDir string, log *slog.Logger, level *slog.LevelVar, out io.Writer) error {
	ls, err := controller.Listen(cfg)
	if err != nil {
		return err
	}
	defer ls.Close()
	tpms, err := upTPMs(ctx, cfg, nodes, log)
	if err != nil {
		return err
	}
	defer tpms.stop()
	stopObjects, err := startObjectStore(cfg, log)
	if err != nil {
		return err
	}
	defer stopObjects()
	c, err := controller.New(ctx, cfg, log, level)
	if err != nil {
		return err
	}
	defer c.Close()
	accounts := make([]identity.BootstrapAccount, len(upAccounts))
	for i, a := range upAccounts {
		accounts[i] = a.BootstrapAccount
		password, err := readPassword(filepath.Join(cfg.DataDir, a.file))
		switch {
		case err == nil:
			accounts[i].Password = password
		case errors.Is(err, fs.ErrNotExist):
			// A new cloud, or lost credentials: make (or reset) the password.
			accounts[i].Password, accounts[i].ResetPassword = newPassword(), true
		default:
			return err
		}
	}
	if err := c.Bootstrap(ctx, accounts...); err != nil {
		return err
	}
	for i, a := range upAccounts {
		if err := writeOpenRC(filepath.Join(cfg.DataDir, a.file), cfg, accounts[i]); err != nil {
			return err
		}
	}
	var projects []string
	for _, a := range upAccounts {
		projects = append(projects, a.Project)
	}
	if err := addNetworks(ctx, c, projects, log); err != nil {
		return err
	}
	if testImageDir != "" {
		if err := addTestImage(ctx, c, testImageDir, log); err != nil {
			return err
		}
	}
	names := make([]string, nodes)
	hostCfgs := map[string]*config.Config{}
	for i := range names {
		names[i] = fmt.Sprintf("compute-%d", i+1)
		hostCfg := *cfg
		// The first host is the network node (DHCP servers and routers)
		// and, unless the configuration names backends for every host,
		// the storage host.
		hostCfg.Agent.NetworkNode = i == 0
		if len(cfg.Volume.Backends) == 0 && i == 0 {
			hostCfg.Volume.Backends = []string{"file"}
		}
		hostCfgs[names[i]] = &hostCfg
	}
	if cfg.Network.Driver == "linux" {
		f, err := newFabric(ctx, cfg, names, hostCfgs)
		if err != nil {
			return err
		}
		defer f.stop()
		log.Info("compute hosts in network namespaces of their own", "prefix", f.prefix)
	}
	var hosts sync.WaitGroup
	defer hosts.Wait()
	hostCtx, stopHosts := context.WithCancel(ctx)
	defer stopHosts()
	for _, name := range names {
		dial := func(opts ...bus.Option) (*bus.Conn, error) {
			return bus.Connect("", "trustack-agent-"+name, append(opts, bus.InProcess(c.Bus), bus.Logger(log))...)
		}
		h, err := NewHost(ctx, hostCfgs[name], dial, name, hostDir(cfg, name), tpms.addr[name], log)
		if err != nil {
			return err
		}
		hosts.Add(1)
		go func() {
			defer hosts.Done()
			if err := h.Run(hostCtx); err != nil && hostCtx.Err() == nil {
				log.Error("compute host stopped", "host", name, "error", err)
			}
		}()
	}
	served := make(chan error, 1)
	go func() { served <- c.Serve(ctx, ls) }()
	if err := waitForHosts(ctx, c, nodes, served); err != nil {
		return err
	}
	fmt.Fprintf(out, "trustack ready at %s with %d compute hosts: source %s to use it\n", controller.AuthURL(cfg), nodes, filepath.Join(cfg.DataDir, "openrc"))
	fmt.Fprintf(out, "console proxy at %s%s/websocket: `openstack console url show --novnc SERVER` gives a server's console\n", cfg.BaseURL(), computeapi.ConsolePath)
	if c.S3 != nil {
		fmt.Fprintf(out, "S3 API at %s: sign with the keys of `openstack ec2 credentials create`\n", cfg.S3URL())
	}
	return <-served
}

func hostDir(cfg *config.Config, name string) string {
	return filepath.Join(cfg.DataDir, "hosts", name)
}

// simulatedTPMs are the swtpm instances of `trustack up`'s hosts.
type simulatedTPMs struct {
	addr  map[string]string // by host name; none when hosts do not attest
	stops []func() error
}

func (t *simulatedTPMs) stop() {
	for _, stop := range t.stops {
		stop()
	}
}

// upTPMs decides whether `trustack up`'s hosts attest ([attestation]
// enabled: auto means if swtpm is installed) and if so gives each its own
// swtpm, manufactured once in its directory with an EK certificate from
// one local CA (the cloud's "TPM manufacturer", which the verifier
// trusts), and started on free ports.
func upTPMs(ctx context.Context, cfg *config.Config, nodes int, log *slog.Logger) (*simulatedTPMs, error) {
	t := &simulatedTPMs{addr: map[string]string{}}
	switch cfg.Attestation.Enabled {
	case "auto", "yes", "no":
	default:
		return nil, fmt.Errorf("attestation must be auto, yes or no, not %q", cfg.Attestation.Enabled)
	}
	if cfg.Attestation.Enabled == "auto" {
		cfg.Attestation.Enabled = "yes"
		if _, err := exec.LookPath("swtpm"); err != nil {
			cfg.Attestation.Enabled = "no"
			log.Warn("swtpm is not installed: the compute hosts do not attest (run scripts/install-deps to have them attest)")
		}
	}
	if cfg.Attestation.Enabled == "no" {
		return t, nil
	}
	caDir := filepath.Join(cfg.DataDir, "swtpm-ca")
	for i := 1; i <= nodes; i++ {
		name := fmt.Sprintf("compute-%d", i)
		dir := filepath.Join(hostDir(cfg, name), "swtpm")
		ca, err := tpm.Manufacture(ctx, dir, caDir)
		if err != nil {
			t.stop()
			return nil, fmt.Errorf("host %s: %w", name, err)
		}
		if i == 1 {
			cfg.Attestation.CABundles = append(cfg.Attestation.CABundles, ca.Root, ca.Issuer)
		}
		addr, stop, err := tpm.Start(ctx, dir)
		if err != nil {
			t.stop()
			return nil, fmt.Errorf("host %s: %w", name, err)
		}
		t.addr[name], t.stops = addr, append(t.stops, stop)
	}
	log.Info("compute hosts attest, each with its own swtpm", "hosts", nodes, "ca", caDir)
	return t, nil
}

// waitForHosts waits until n compute hosts are up, so that "ready" means
// servers can be built, or until the controller stops serving.
func waitForHosts(ctx context.Context, c *controller.Controller, n int, served <-chan error) error {
	for {
		hosts, err := c.Compute.Hosts(ctx)
		if err != nil {
			return err
		}
		up := 0
		for _, h := range hosts {
			// An attesting host is up once attested and let in.
			if c.Compute.Alive(h) && !h.HeldByAttestation() {
				up++
			}
		}
		if up >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-served:
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func newPassword() string {
	return rand.Text()[:20]
}

// readPassword returns OS_PASSWORD from an openrc file.
func readPassword(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "export OS_PASSWORD="); ok {
			return strings.Trim(v, `'"`), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s has no OS_PASSWORD: remove it to have a new password made", path)
}

// writeOpenRC writes the credentials of an account for the OpenStack CLIs,
// readable by its owner only.
func writeOpenRC(path string, cfg *config.Config, a identity.BootstrapAccount) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# trustack credentials for %s: source this file to use the OpenStack CLIs.\n", a.User)
	for _, kv := range [][2]string{
		{"OS_AUTH_URL", controller.AuthURL(cfg)},
		{"OS_USERNAME", a.User},
		{"OS_PASSWORD", a.Password},
		{"OS_PROJECT_NAME", a.Project},
		{"OS_USER_DOMAIN_NAME", "Default"},
		{"OS_PROJECT_DOMAIN_NAME", "Default"},
		{"OS_IDENTITY_API_VERSION", "3"},
		{"OS_REGION_NAME", cfg.Region},
		{"OS_INTERFACE", "public"},
	} {
		fmt.Fprintf(&b, "export %s='%s'\n", kv[0], kv[1])
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}
