// Command apibench measures trustack's identity API under load, on each
// database backend: it starts `trustack up` (a separate process, as in
// production) on a fresh data directory, authenticates as the admin its
// openrc names, then has N concurrent clients
// (keep-alive connections, as OpenStack services and SDKs use) send
// authenticated GET requests for a while, and reports the throughput and
// latency percentiles, twice: as fast as the clients can go (the most the
// server sustains), and at a fixed rate (the latency users see at that
// load). At a fixed rate each request has a scheduled time and its latency
// counts from then, so a stall cannot hide the requests queued behind it.
// It also measures port creations, server boots on fake hosts (with and
// without a port each), how much longer than a bare QEMU command line
// the test guest takes to boot through trustack, and, on hosts in network
// namespaces, how long a guest takes to reach a peer on another host and a
// security group rule to reach every host's firewall.
// Run by `make bench`.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/trustack/trustack/internal/pgtest"
)

func main() {
	binary := flag.String("trustack", "", "the trustack binary to measure")
	backends := flag.String("backends", "sqlite,postgres", "database backends to measure, comma-separated")
	what := flag.String("what", "identity,ports,boots,boots-ports,guest,network,volume", "what to measure, comma-separated: identity, ports, boots, boots-ports, guest, network (as root), volume")
	clients := flag.Int("c", 64, "concurrent clients")
	duration := flag.Duration("d", 10*time.Second, "identity: how long to measure, after a 2 s warm-up")
	rate := flag.Float64("rate", 10000, "identity: requests per second of the fixed-rate run")
	boots := flag.Int("boots", 1000, "boots: how many servers to boot")
	ports := flag.Int("ports", 5000, "ports: how many ports to create")
	hosts := flag.Int("hosts", 50, "boots: how many fake compute hosts")
	guestRuns := flag.Int("guest-runs", 5, "guest: how many boots through trustack, and as many with bare QEMU")
	networkRuns := flag.Int("network-runs", 5, "network: how many guests to boot, each pinging a peer on the other host")
	rules := flag.Int("rules", 20, "network: how many security group rules to create and delete")
	volumeRuns := flag.Int("volume-runs", 20, "volume: how many volumes to create and attach to each of two guests")
	flag.Parse()
	debug.SetGCPercent(400) // keep the client's collections out of the server's latency
	defer pgtest.Stop()
	fmt.Printf("trustack APIs, %d CPUs, %s\n", runtime.NumCPU(), time.Now().Format(time.DateOnly))
	for _, w := range strings.Split(*what, ",") {
		measured := strings.Split(*backends, ",")
		if w == "guest" || w == "network" || w == "volume" {
			measured = []string{"sqlite"} // it measures QEMU and the hosts, not the store
		}
		for _, backend := range measured {
			fmt.Printf("\n== %s, %s\n", w, backend)
			var err error
			switch w {
			case "identity":
				err = withCloud(*binary, backend, 0, "", func(openrc string) error { return identity(openrc, *clients, *duration, *rate) })
			case "ports":
				err = withCloud(*binary, backend, 0, "", func(openrc string) error { return createPorts(openrc, *clients, *ports) })
			case "boots", "boots-ports":
				err = withCloud(*binary, backend, *hosts, "", func(openrc string) error { return bootServers(openrc, *clients, *boots, w == "boots-ports") })
			case "guest":
				err = guest(*binary, *guestRuns)
			case "network":
				err = network(*binary, *networkRuns, *rules)
			case "volume":
				err = volumes(*binary, *volumeRuns)
			default:
				err = fmt.Errorf("unknown measurement %q", w)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "apibench:", err)
				pgtest.Stop()
				os.Exit(1)
			}
		}
	}
}

// withCloud runs `trustack up` with the backend, the given number of
// compute hosts and conf (more of its configuration file, "" for none), in
// this process's working directory, and calls fn with its admin openrc
// while it serves.
func withCloud(binary, backend string, hosts int, conf string, fn func(openrc string) error) error {
	dir, err := os.MkdirTemp("", "trustack-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := l.Addr().String()
	l.Close()
	args := []string{"up", "--data-dir", dir, "--listen", addr, "--nodes", fmt.Sprint(hosts)}
	switch backend {
	case "sqlite":
	case "postgres":
		dsn, drop, err := pgtest.NewDatabase()
		if err != nil {
			return err
		}
		defer drop()
		conf += "[database]\nconnection = " + dsn + "\n"
	default:
		return fmt.Errorf("unknown backend %q", backend)
	}
	if conf != "" {
		path := filepath.Join(dir, "trustack.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			return err
		}
		args = append(args, "--config", path)
	}
	cmd := exec.Command(binary, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	log, err := os.Create(filepath.Join(dir, "trustack.log"))
	if err != nil {
		return err
	}
	defer log.Close()
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "trustack ready") {
				ready <- nil
				io.Copy(io.Discard, stdout)
				return
			}
		}
		ready <- fmt.Errorf("trustack up ended before it was ready")
	}()
	select {
	case err := <-ready:
		if err != nil {
			return fmt.Errorf("%w; its log ends:\n%s", err, logTail(log.Name()))
		}
	case <-time.After(60 * time.Second):
		return fmt.Errorf("trustack up was not ready within 60 s; its log ends:\n%s", logTail(log.Name()))
	}
	return fn(filepath.Join(dir, "openrc"))
}

// logTail returns the last lines of the file at path, which goes away with
// the cloud's data directory.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

// session is a login: a project-scoped token and who it is for.
type session struct {
	token, userID, projectID string
	base                     string // the cloud's base URL, before /identity
}

// openSession logs in with the credentials of an openrc file.
func openSession(openrc string) (session, error) {
	env, err := readOpenRC(openrc)
	if err != nil {
		return session{}, err
	}
	body, _ := json.Marshal(map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{"user": map[string]any{
			"name": env["OS_USERNAME"], "domain": map[string]any{"name": env["OS_USER_DOMAIN_NAME"]}, "password": env["OS_PASSWORD"],
		}}},
		"scope": map[string]any{"project": map[string]any{"name": env["OS_PROJECT_NAME"], "domain": map[string]any{"name": env["OS_PROJECT_DOMAIN_NAME"]}}},
	}})
	resp, err := http.Post(env["OS_AUTH_URL"]+"/auth/tokens", "application/json", bytes.NewReader(body))
	if err != nil {
		return session{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 201 {
		return session{}, fmt.Errorf("login: status %d", resp.StatusCode)
	}
	var tok struct {
		Token struct {
			User    struct{ ID string }
			Project struct{ ID string }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		return session{}, err
	}
	return session{token: resp.Header.Get("X-Subject-Token"), userID: tok.Token.User.ID, projectID: tok.Token.Project.ID,
		base: strings.TrimSuffix(env["OS_AUTH_URL"], "/identity/v3")}, nil
}

// readOpenRC reads the export lines of an openrc file.
func readOpenRC(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if kv, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "export "); ok {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = strings.Trim(v, `'"`)
		}
	}
	return env, sc.Err()
}
