// Package pgtest gives tests and benchmarks a real PostgreSQL: the server
// named by TRUSTACK_TEST_POSTGRES, or else a cluster of its own, started
// on a free port in a temporary directory and stopped at the end. Each
// test gets a fresh database.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// EnvDSN names the environment variable with the DSN of a server on which
// the tests may create and drop databases.
const EnvDSN = "TRUSTACK_TEST_POSTGRES"

var (
	once    sync.Once
	base    string // DSN of the server's postgres database
	cluster *exec.Cmd
	dataDir string
	setup   error
)

// Main runs the tests and then stops the cluster pgtest started, if any.
// Call it from TestMain: os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	Stop()
	return code
}

// DSN returns the DSN of a new, empty database that is dropped when the
// test ends. It fails the test, saying how to install PostgreSQL, if no
// server can be had.
func DSN(t testing.TB) string {
	t.Helper()
	dsn, drop, err := NewDatabase()
	if err != nil {
		t.Fatalf("PostgreSQL for tests: %v", err)
	}
	t.Cleanup(drop)
	return dsn
}

// NewDatabase returns the DSN of a new, empty database and a function that
// drops it, starting the server first if need be. Programs that are not
// tests call Stop when done.
func NewDatabase() (dsn string, drop func(), err error) {
	once.Do(func() { base, setup = start() })
	if setup != nil {
		return "", nil, setup
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	defer admin.Close()
	var b [6]byte
	rand.Read(b[:])
	name := "trustack_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		return "", nil, fmt.Errorf("create database: %w", err)
	}
	drop = func() {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer admin.Close()
		admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

func start() (string, error) {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		return dsn, nil
	}
	bin, err := binDir()
	if err != nil {
		return "", err
	}
	dataDir, err = os.MkdirTemp("", "trustack-pg-")
	if err != nil {
		return "", err
	}
	// PostgreSQL refuses to run as root; run it as the postgres user then.
	var runAs *syscall.Credential
	if os.Geteuid() == 0 {
		pg, err := user.Lookup("postgres")
		if err != nil {
			return "", fmt.Errorf("running as root needs the postgres user to run the server: %w", err)
		}
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		if err := os.Chown(dataDir, uid, gid); err != nil {
			return "", fmt.Errorf("chown %s: %w", dataDir, err)
		}
		runAs = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	db := filepath.Join(dataDir, "data")
	out, err := command(runAs, filepath.Join(bin, "initdb"), "-D", db, "-U", "postgres", "-A", "trust", "--no-sync").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("initdb: %v: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	cluster = command(runAs, filepath.Join(bin, "postgres"), "-D", db, "-p", fmt.Sprint(port), "-k", dataDir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=300")
	log, err := os.Create(filepath.Join(dataDir, "postgres.log"))
	if err != nil {
		return "", err
	}
	cluster.Stdout, cluster.Stderr = log, log
	if err := cluster.Start(); err != nil {
		return "", fmt.Errorf("start postgres: %w", err)
	}
	dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	conn, _ := sql.Open("pgx", dsn)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if err := conn.PingContext(ctx); err == nil {
			return dsn, nil
		}
		select {
		case <-ctx.Done():
			out, _ := os.ReadFile(log.Name())
			return "", fmt.Errorf("postgres did not come up within 30s: %s", out)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// command runs name as the given user, or as this process's if nil.
func command(as *syscall.Credential, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = dataDir
	if as != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: as}
	}
	return cmd
}

// binDir finds the newest installed PostgreSQL's programs.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Strings(dirs)
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	return "", fmt.Errorf("PostgreSQL is not installed: run scripts/install-deps (it installs the Debian package postgresql), or set %s to a server's DSN", EnvDSN)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Stop stops the cluster pgtest started, if any.
func Stop() {
	if cluster != nil && cluster.Process != nil {
		cluster.Process.Signal(os.Interrupt) // fast shutdown
		done := make(chan struct{})
		go func() { cluster.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cluster.Process.Kill()
		}
	}
	if dataDir != "" {
		os.RemoveAll(dataDir)
	}
}
