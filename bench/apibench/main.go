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
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/trustack/trustack/internal/pgtest"
)

func main() {
	binary := flag.String("trustack", "", "the trustack binary to measure")
	backends := flag.String("backends", "sqlite,postgres", "database backends to measure, comma-separated")
	clients := flag.Int("c", 64, "concurrent clients")
	duration := flag.Duration("d", 10*time.Second, "how long to measure, after a 2 s warm-up")
	rate := flag.Float64("rate", 10000, "requests per second of the fixed-rate run")
	flag.Parse()
	debug.SetGCPercent(400) // keep the client's collections out of the server's latency
	defer pgtest.Stop()
	fmt.Printf("trustack identity API, %d CPUs, %s\n", runtime.NumCPU(), time.Now().Format(time.DateOnly))
	for _, backend := range strings.Split(*backends, ",") {
		fmt.Printf("\n== %s\n", backend)
		if err := bench(*binary, backend, *clients, *duration, *rate); err != nil {
			fmt.Fprintln(os.Stderr, "apibench:", err)
			pgtest.Stop()
			os.Exit(1)
		}
	}
}

// bench runs trustack up on the backend and measures it.
func bench(binary, backend string, clients int, duration time.Duration, rate float64) error {
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
	args := []string{"up", "--data-dir", dir, "--listen", addr}
	switch backend {
	case "sqlite":
	case "postgres":
		dsn, drop, err := pgtest.NewDatabase()
		if err != nil {
			return err
		}
		defer drop()
		conf := filepath.Join(dir, "trustack.conf")
		if err := os.WriteFile(conf, []byte("[database]\nconnection = "+dsn+"\n"), 0o600); err != nil {
			return err
		}
		args = append(args, "--config", conf)
	default:
		return fmt.Errorf("unknown backend %q", backend)
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
		ready <- fmt.Errorf("trustack up ended before it was ready; see its log")
	}()
	select {
	case err := <-ready:
		if err != nil {
			return err
		}
	case <-time.After(60 * time.Second):
		return fmt.Errorf("trustack up was not ready within 60 s")
	}
	return run(filepath.Join(dir, "openrc"), clients, duration, rate)
}

// target is one kind of request to measure.
type target struct {
	name    string
	path    string            // below the identity endpoint
	headers map[string]string // besides X-Auth-Token
}

func run(openrc string, clients int, duration time.Duration, rate float64) error {
	env, err := readOpenRC(openrc)
	if err != nil {
		return err
	}
	token, userID, err := login(env)
	if err != nil {
		return err
	}
	auth := env["OS_AUTH_URL"]
	transport := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	for _, t := range []target{
		{name: "GET /identity/v3/users/{id} (token check, policy, one row)", path: "/users/" + userID},
		{name: "GET /identity/v3/auth/tokens (validate a subject token, with its catalog)", path: "/auth/tokens", headers: map[string]string{"X-Subject-Token": token}},
	} {
		fmt.Println(t.name)
		for _, r := range []float64{0, rate} {
			res, err := measure(client, auth+t.path, token, t.headers, clients, duration, r)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			mode := "as fast as possible"
			if r > 0 {
				mode = fmt.Sprintf("at %.0f req/s", r)
			}
			fmt.Printf("  %-20s %d clients, %v: %.0f req/s, p50 %.2f ms, p99 %.2f ms, errors %d\n",
				mode, clients, duration, float64(res.n)/duration.Seconds(), ms(res.p50), ms(res.p99), res.errors)
		}
	}
	return nil
}

type result struct {
	n, errors int
	p50, p99  time.Duration
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// measure runs the clients for a warm-up and then for duration, counting
// only requests that start within the measured window. With rate > 0 the
// clients together send rate requests per second, each at its scheduled
// time or as soon after it as the client is free, and latency counts from
// the scheduled time.
func measure(client *http.Client, url, token string, headers map[string]string, clients int, duration time.Duration, rate float64) (result, error) {
	warmup := 2 * time.Second
	start := time.Now()
	measureFrom, end := start.Add(warmup), start.Add(warmup+duration)
	var mu sync.Mutex
	var all []time.Duration
	var errors int
	var first error
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var bad int
			// Each client's schedule: one request every clients/rate, offset
			// so the clients interleave.
			interval := time.Duration(float64(clients) / rate * float64(time.Second))
			next := start.Add(time.Duration(c) * interval / time.Duration(clients))
			for {
				t0 := time.Now()
				if rate > 0 {
					if wait := time.Until(next); wait > 0 {
						time.Sleep(wait)
					}
					t0, next = next, next.Add(interval)
				}
				if t0.After(end) {
					break
				}
				req, _ := http.NewRequest("GET", url, nil)
				req.Header.Set("X-Auth-Token", token)
				for k, v := range headers {
					req.Header.Set(k, v)
				}
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				t1 := time.Now()
				if t0.Before(measureFrom) {
					continue
				}
				if err != nil {
					bad++
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					continue
				}
				mine = append(mine, t1.Sub(t0))
			}
			mu.Lock()
			all = append(all, mine...)
			errors += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(all) == 0 {
		return result{}, fmt.Errorf("no successful request: %v", first)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) time.Duration { return all[int(p*float64(len(all)-1))] }
	return result{n: len(all), errors: errors, p50: pct(0.50), p99: pct(0.99)}, nil
}

// login returns a project-scoped token and the user's ID.
func login(env map[string]string) (token, userID string, err error) {
	body, _ := json.Marshal(map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{"user": map[string]any{
			"name": env["OS_USERNAME"], "domain": map[string]any{"name": env["OS_USER_DOMAIN_NAME"]}, "password": env["OS_PASSWORD"],
		}}},
		"scope": map[string]any{"project": map[string]any{"name": env["OS_PROJECT_NAME"], "domain": map[string]any{"name": env["OS_PROJECT_DOMAIN_NAME"]}}},
	}})
	resp, err := http.Post(env["OS_AUTH_URL"]+"/auth/tokens", "application/json", bytes.NewReader(body))
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 201 {
		return "", "", fmt.Errorf("login: status %d", resp.StatusCode)
	}
	var tok struct {
		Token struct{ User struct{ ID string } }
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		return "", "", err
	}
	return resp.Header.Get("X-Subject-Token"), tok.Token.User.ID, nil
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
