package controller

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
	"path/filepath"
	"strings"

	"github.com/trustack/trustack/config"
	"github.com/trustack/trustack/identity"
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

// Up runs a whole cloud in this process until ctx ends: the controller,
// bootstrapped with an admin and a demo account whose credentials it writes
// to DataDir/openrc and DataDir/demo-openrc. A restart on the same data
// directory keeps everything, passwords included. Once it serves, it
// writes a line with "trustack ready" and the auth URL to out.
func Up(ctx context.Context, cfg *config.Config, log *slog.Logger, out io.Writer) error {
	c, err := New(ctx, cfg, log)
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
	l, err := c.Listen()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "trustack ready at %s: source %s to use it\n", AuthURL(cfg), filepath.Join(cfg.DataDir, "openrc"))
	return c.Serve(ctx, l)
}

// AuthURL is the identity endpoint clients authenticate against.
func AuthURL(cfg *config.Config) string {
	return cfg.BaseURL() + "/identity/v3"
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
		{"OS_AUTH_URL", AuthURL(cfg)},
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
