// Package e2e tests trustack as its users meet it: the trustack binary,
// built with the race detector, driven by the OpenStack command-line
// clients and by Tempest, as installed from Debian by scripts/install-deps.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trustack/trustack/internal/pgtest"
)

// binary is the trustack binary under test.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "trustack-e2e-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "trustack")
	build := exec.Command("go", "build", "-race", "-o", binary, "../cmd/trustack")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build trustack: %v\n%s", err, out)
		os.Exit(1)
	}
	code := pgtest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// need fails the test unless the commands are installed.
func need(t testing.TB, commands ...string) {
	t.Helper()
	for _, c := range commands {
		if _, err := exec.LookPath(c); err != nil {
			t.Fatalf("%s is not installed: run scripts/install-deps (make test does)", c)
		}
	}
}

// testConfig keeps passwords cheap to check: the end-to-end tests
// authenticate hundreds of times, under the race detector.
const testConfig = "[auth]\npassword_hash_rounds = 6\n"

// cloud is a trustack process and its data directory.
type cloud struct {
	t       testing.TB
	dir     string
	addr    string
	s3addr  string // the S3 API's
	args    []string
	cmd     *exec.Cmd
	exited  chan struct{}
	logFile string
}

// startUp runs `trustack up` on a new data directory, with flags added to
// its command line, such as "--nodes", "3".
func startUp(t testing.TB, flags ...string) *cloud {
	t.Helper()
	return startUpWith(t, "", flags...)
}

// startUpWith is startUp with conf added to the configuration file.
func startUpWith(t testing.TB, conf string, flags ...string) *cloud {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "trustack.conf")
	if err := os.WriteFile(file, []byte(testConfig+conf), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &cloud{t: t, dir: dir}
	// The free port found may be taken by another test's process before
	// trustack binds it: try another.
	for attempt := 1; ; attempt++ {
		c.addr, c.s3addr = freeAddr(t), freeAddr(t)
		c.args = append([]string{"up", "--config", file, "--data-dir", filepath.Join(dir, "data"), "--listen", c.addr, "--s3-listen", c.s3addr}, flags...)
		err := c.tryStart("trustack ready")
		if err == nil {
			return c
		}
		if attempt == 3 || !strings.Contains(c.log(), "address already in use") {
			t.Fatal(err)
		}
	}
}

func freeAddr(t testing.TB) string { return freeAddrOn(t, "127.0.0.1") }

// freeAddrOn returns an address of ip with a port free at the moment.
func freeAddrOn(t testing.TB, ip string) string {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start runs the binary with c.args until a line of its output (stdout or
// log) contains ready.
func (c *cloud) start(ready string) {
	c.t.Helper()
	if err := c.tryStart(ready); err != nil {
		c.t.Fatal(err)
	}
}

// tryStart is start, returning why the binary did not get ready.
func (c *cloud) tryStart(ready string) error {
	c.t.Helper()
	c.logFile = filepath.Join(c.dir, fmt.Sprintf("trustack-%d.log", time.Now().UnixNano()))
	log, err := os.Create(c.logFile)
	if err != nil {
		c.t.Fatal(err)
	}
	pr, pw := io.Pipe()
	c.cmd = exec.Command(binary, c.args...)
	c.cmd.Stdout = io.MultiWriter(pw, log)
	c.cmd.Stderr = io.MultiWriter(pw, log)
	if err := c.cmd.Start(); err != nil {
		return err
	}
	c.exited = make(chan struct{})
	go func() {
		c.cmd.Wait()
		pw.Close()
		log.Close()
		close(c.exited)
	}()
	found := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), ready) {
				close(found)
				break
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case <-found:
	case <-c.exited:
		return fmt.Errorf("trustack %s exited before it was ready:\n%s", c.args[0], c.log())
	case <-time.After(90 * time.Second):
		c.signal(syscall.SIGKILL)
		return fmt.Errorf("trustack %s not ready within 90 s:\n%s", c.args[0], c.log())
	}
	c.t.Cleanup(func() {
		c.signal(syscall.SIGKILL)
		if c.t.Failed() {
			c.t.Logf("trustack %s's warnings and errors (all of its log: %s, removed with the test's directory):\n%s", c.args[0], c.logFile, c.troubles())
		}
	})
	return nil
}

// troubles returns the lines of the log at level WARN or ERROR.
func (c *cloud) troubles() string {
	var out strings.Builder
	for line := range strings.Lines(c.log()) {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			out.WriteString(line)
		}
	}
	return out.String()
}

func (c *cloud) log() string {
	b, _ := os.ReadFile(c.logFile)
	return string(b)
}

// signal sends sig and waits for the process to end.
func (c *cloud) signal(sig syscall.Signal) {
	select {
	case <-c.exited:
		return
	default:
	}
	c.cmd.Process.Signal(sig)
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		c.t.Errorf("trustack did not end within 30 s of %v", sig)
		c.cmd.Process.Kill()
		<-c.exited
	}
}

// restart stops the process with sig and starts it again on the same data.
func (c *cloud) restart(sig syscall.Signal) {
	c.t.Helper()
	c.signal(sig)
	c.start("trustack ready")
}

// openrc returns the environment an openrc file in the data directory sets.
func (c *cloud) openrc(name string) map[string]string {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, "data", name))
	if err != nil {
		c.t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if kv, ok := strings.CutPrefix(line, "export "); ok {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = strings.Trim(v, "'")
		}
	}
	return env
}

// environ returns the process environment with env's OS_ variables
// replacing any already set.
func environ(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OS_") {
			out = append(out, kv)
		}
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// openstack runs the OpenStack CLI with env and returns its output.
func openstack(t testing.TB, env map[string]string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("openstack", args...)
	cmd.Env = environ(env)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

// must runs the OpenStack CLI and fails the test if it fails.
func must(t testing.TB, env map[string]string, args ...string) string {
	t.Helper()
	out, err := openstack(t, env, args...)
	if err != nil {
		t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// api makes a request to the identity API and decodes a JSON answer into
// out (if not nil), returning the response.
func api(t testing.TB, method, url, token string, body any, out any, headers ...string) *http.Response {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, b)
		}
	}
	return resp
}

// token logs in as the openrc's user and returns the token.
func token(t testing.TB, env map[string]string) string {
	t.Helper()
	resp := api(t, "POST", env["OS_AUTH_URL"]+"/auth/tokens", "", map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{"user": map[string]any{
			"name": env["OS_USERNAME"], "domain": map[string]any{"name": "Default"}, "password": env["OS_PASSWORD"]}}},
		"scope": map[string]any{"project": map[string]any{"name": env["OS_PROJECT_NAME"], "domain": map[string]any{"name": "Default"}}},
	}}, nil)
	if resp.StatusCode != 201 {
		t.Fatalf("login as %s: status %d", env["OS_USERNAME"], resp.StatusCode)
	}
	return resp.Header.Get("X-Subject-Token")
}

// validates reports whether subject is a valid token, asking as admin.
func validates(t testing.TB, env map[string]string, admin, subject string) bool {
	t.Helper()
	resp := api(t, "GET", env["OS_AUTH_URL"]+"/auth/tokens", admin, nil, nil, "X-Subject-Token", subject)
	switch resp.StatusCode {
	case 200:
		return true
	case 404:
		return false
	}
	t.Fatalf("validate token: status %d", resp.StatusCode)
	return false
}
