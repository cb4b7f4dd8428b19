package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trustack/trustack/internal/pgtest"
)

// startControllers starts n controllers (`trustack server`, named ctl-1,
// ctl-2...) sharing one PostgreSQL database, one key repository and one
// image directory (as NFS would share them), their embedded NATS servers
// one cluster; the hosts named get an swtpm each, by the local CA of
// caDir, which the controllers trust. conf is added to each controller's
// configuration. The splitCloud's ctl, api and bus are the first
// controller's.
func startControllers(t *testing.T, n int, caDir, conf string, hosts ...string) (*splitCloud, []*cloud, []string) {
	t.Helper()
	tpms, ca := startTPMs(t, caDir, hosts...)
	s := &splitCloud{t: t, dir: t.TempDir(), agents: map[string]*cloud{}, tpms: tpms}
	dsn := pgtest.DSN(t)
	var apis, routes []string
	for range n {
		apis = append(apis, freeAddr(t))
		s.buses = append(s.buses, freeAddr(t))
		routes = append(routes, freeAddr(t))
	}
	var ctls []*cloud
	for i := range n {
		name := fmt.Sprintf("ctl-%d", i+1)
		file := writeConfig(t, filepath.Join(s.dir, name+".conf"), testConfig+
			"[DEFAULT]\ndata_dir = "+filepath.Join(s.dir, name)+"\n"+
			"[controller]\nname = "+name+"\n"+
			"[database]\nconnection = "+dsn+"\n"+
			"[auth]\nkey_repository = "+filepath.Join(s.dir, "fernet-keys")+"\n"+
			"[credential]\nkey_repository = "+filepath.Join(s.dir, "credential-keys")+"\n"+
			"[image]\nfilesystem_store_datadir = "+filepath.Join(s.dir, "images")+"\n"+
			"[api]\nlisten = "+apis[i]+"\n"+
			"[bus]\nlisten = "+s.buses[i]+"\ncluster_listen = "+routes[i]+"\nroutes = "+strings.Join(routes, ",")+"\ncluster_secret = a secret of the test's\n"+
			"[attestation]\nenabled = yes\nca_bundles = "+ca.Root+","+ca.Issuer+"\n"+conf)
		if i == 0 {
			if out, err := runTrustack("manage", "bootstrap", "--admin-password", "s3cret", "--config", file); err != nil {
				t.Fatalf("trustack manage bootstrap: %v\n%s", err, out)
			}
		}
		c := &cloud{t: t, dir: filepath.Join(s.dir, name), addr: apis[i], args: []string{"server", "--config", file}}
		if err := os.MkdirAll(c.dir, 0o750); err != nil {
			t.Fatal(err)
		}
		c.start("trustack server ready")
		ctls = append(ctls, c)
	}
	s.ctl, s.api, s.bus = ctls[0], apis[0], s.buses[0]
	s.admin = map[string]string{
		"OS_AUTH_URL": "http://" + s.api + "/identity/v3", "OS_USERNAME": "admin", "OS_PASSWORD": "s3cret",
		"OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
		"OS_IDENTITY_API_VERSION": "3",
	}
	return s, ctls, apis
}

// verdictSeen is a host's latest verdict as an administrator reads it.
type verdictSeen struct {
	At, By, State string
}

// TestSeveralControllers runs three controllers on one PostgreSQL and a
// three-node NATS cluster (their embedded servers), with four attested
// hosts whose agents know every controller's bus. 300 boots go to the
// three APIs in turn while one controller is killed: a boot its API
// refused goes to the next, as a load balancer would send it. Every
// server ends ACTIVE, or in ERROR with a reason, and none runs on two
// hosts: the builds the dead controller had in flight are taken over by
// another once its lease expires. Meanwhile every host keeps being
// attested on schedule (no gap of two intervals between its verdicts),
// by one controller at a time: each host's verdicts name one controller,
// and those of the dead one's hosts another after its death, once.
func TestSeveralControllers(t *testing.T) {
	need(t, "swtpm", "swtpm_setup")
	const interval = 3 * time.Second
	hosts := []string{"host-1", "host-2", "host-3", "host-4"}
	s, ctls, apis := startControllers(t, 3, t.TempDir(),
		"[attestation]\ninterval = 3\ngrace_period = 30\n[compute]\nservice_down_time = 20\n", hosts...)
	for _, h := range hosts {
		s.startAgent(h, "[compute]\ndriver = fake\nheartbeat_interval = 1\nfake_vcpus = 64\nfake_memory_mb = 65536\nfake_disk_gb = 400\nfake_delay_seconds = 1\n")
	}
	tok := token(t, s.admin)
	computeOf := func(i int) string { return "http://" + apis[i] + "/compute/v2.1" }
	liftQuotas(t, s.admin, computeOf(0), tok)
	path, _ := imageFile(t, 1<<20)
	image := strings.TrimSpace(must(t, s.admin, "image", "create", "--disk-format", "raw", "--container-format", "bare",
		"--public", "--file", path, "-f", "value", "-c", "id", "cirros"))

	// The hosts' verdicts, as the first controller (never killed) shows
	// them, every half second until the test ends.
	attestations := func() (map[string]verdictSeen, error) {
		var l struct {
			Attestations []struct {
				Host, State string
				AttestedAt  string `json:"attested_at"`
				AttestedBy  string `json:"attested_by"`
			}
		}
		code, err := getJSON(computeOf(0)+"/os-trustack-attestations", tok, &l)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("GET os-trustack-attestations: status %d", code)
		}
		out := map[string]verdictSeen{}
		for _, a := range l.Attestations {
			if a.AttestedAt != "" {
				out[a.Host] = verdictSeen{a.AttestedAt, a.AttestedBy, a.State}
			}
		}
		return out, err
	}
	eventually(t, time.Minute, func() (bool, string) {
		v, err := attestations()
		trusted := 0
		for _, seen := range v {
			if seen.State == "trusted" {
				trusted++
			}
		}
		return err == nil && trusted == len(hosts), fmt.Sprint(v, err)
	}, "every host trusted")
	var (
		mu       sync.Mutex
		verdicts = map[string][]verdictSeen{} // by host, each verdict once, in order
	)
	watching, stopWatching := make(chan struct{}), make(chan struct{})
	watched := time.Now()
	go func() {
		defer close(watching)
		for {
			if v, err := attestations(); err == nil {
				mu.Lock()
				for h, seen := range v {
					if l := verdicts[h]; len(l) == 0 || l[len(l)-1] != seen {
						verdicts[h] = append(l, seen)
					}
				}
				mu.Unlock()
			}
			select {
			case <-stopWatching:
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()

	// 300 boots by 12 clients, each boot to the APIs in turn; the second
	// controller is killed (SIGKILL) once 100 were accepted, with builds
	// in flight (each spawn takes a second).
	const boots, clients = 300, 12
	var (
		accepted    = map[string]bool{}
		unknown     int // boots whose outcome the client never learnt
		killOnce    sync.Once
		killedAt    time.Time
		next        = make(chan int)
		wg          sync.WaitGroup
		bootsFailed []string
	)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				body := tinyServer(fmt.Sprintf("vm-%03d", i), image)
				var code int
				var id string
				var err error
				// A refused connection means the request never left:
				// the next controller gets it.
				for try := range len(apis) {
					code, id, err = createServer(computeOf((i+try)%len(apis)), tok, body)
					if !errors.Is(err, syscall.ECONNREFUSED) {
						break
					}
				}
				mu.Lock()
				switch {
				case err == nil && code == http.StatusAccepted:
					accepted[id] = true
					if len(accepted) == 100 {
						killOnce.Do(func() {
							ctls[1].signal(syscall.SIGKILL)
							killedAt = time.Now()
						})
					}
				case err != nil:
					unknown++
				default:
					bootsFailed = append(bootsFailed, fmt.Sprintf("boot %d: status %d", i, code))
				}
				mu.Unlock()
			}
		}()
	}
	for i := range boots {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(bootsFailed) > 0 {
		t.Errorf("boots refused: %v", bootsFailed)
	}
	if killedAt.IsZero() {
		t.Fatal("the second controller was never killed")
	}
	t.Logf("%d boots accepted, %d whose outcome is unknown (cut off by the kill)", len(accepted), unknown)

	servers := waitBuilds(t, computeOf(0), tok, 3*time.Minute)
	t.Logf("every build ended %s after the kill", time.Since(killedAt).Round(100*time.Millisecond))
	listed := map[string]serverDetail{}
	active := map[string]serverDetail{}
	for _, srv := range servers {
		listed[srv.ID] = srv
		switch {
		case srv.Status == "ACTIVE":
			active[srv.ID] = srv
		case srv.Status == "ERROR" && srv.Fault != nil && srv.Fault.Message != "":
			t.Logf("server %s in ERROR: %s", srv.Name, srv.Fault.Message)
		default:
			t.Errorf("server %s: %s, fault %+v; want ACTIVE, or ERROR with a reason", srv.Name, srv.Status, srv.Fault)
		}
	}
	for id := range accepted {
		if _, ok := listed[id]; !ok {
			t.Errorf("server %s was accepted but is not listed", id)
		}
	}
	if len(active) < len(accepted)*9/10 {
		t.Errorf("%d of %d accepted servers ACTIVE, want nearly all", len(active), len(accepted))
	}
	stateFiles := map[string]string{}
	for _, h := range hosts {
		stateFiles[h] = filepath.Join(s.hostDir(h), "fake-hypervisor.json")
	}
	checkHypervisors(t, stateFiles, active)
	taken := strings.Count(ctls[0].log()+ctls[2].log(), "taking over a server's task from a controller gone")
	if taken == 0 {
		t.Error("no controller took over a task of the one killed")
	}
	t.Logf("%d tasks of the controller killed taken over", taken)

	// Two more intervals of verdicts, then their schedule and verifiers.
	time.Sleep(2 * interval)
	close(stopWatching)
	<-watching
	rounds := int(time.Since(watched) / interval)
	mu.Lock()
	defer mu.Unlock()
	moved := 0
	for _, h := range hosts {
		var seen, others []verdictSeen // trusted, and the others
		for _, v := range verdicts[h] {
			if v.State == "trusted" {
				seen = append(seen, v)
			} else {
				others = append(others, v)
			}
		}
		var by []string
		var last time.Time
		for _, v := range seen {
			at, err := time.Parse(time.RFC3339Nano, v.At)
			if err != nil {
				t.Fatalf("host %s attested at %q: %v", h, v.At, err)
			}
			if !last.IsZero() && at.Sub(last) > 2*interval {
				t.Errorf("host %s: %s without a verdict (from %s to %s), want at most two intervals (%s)", h, at.Sub(last), last, at, 2*interval)
			}
			last = at
			if len(by) == 0 || by[len(by)-1] != v.By {
				by = append(by, v.By)
			}
		}
		t.Logf("host %s: %d verdicts, by %v; others than trusted: %v", h, len(seen), by, others)
		switch {
		case len(seen) < rounds-1:
			t.Errorf("host %s: %d verdicts seen in %d intervals, want one each", h, len(seen), rounds)
		case len(by) == 1 && by[0] != "ctl-2":
		case len(by) == 2 && by[0] == "ctl-2" && slices.Contains([]string{"ctl-1", "ctl-3"}, by[1]):
			moved++
		default:
			t.Errorf("host %s attested by %v in turn, want one controller, or ctl-2 then another once it died", h, by)
		}
	}
	if moved == 0 {
		t.Error("the controller killed attested no host: its hosts' move to the others is untested")
	}
}
