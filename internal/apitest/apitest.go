// Package apitest holds what the tests of the API packages share: callers
// known by their tokens (an administrator, members of two projects, a
// reader of one), a token validator that knows them, in the place of the
// identity service, an image service of one image, and JSON requests as
// one of them.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/trustack/trustack"
)

// The projects of the callers, with IDs as Keystone makes them.
const (
	AdminProject = "7c0a9d6f1e2b4c3d8e9f0a1b2c3d4e5f"
	P1           = "1a1a1a1a1a1a4a1a8a1a1a1a1a1a1a1a"
	P2           = "2b2b2b2b2b2b4b2b8b2b2b2b2b2b2b2b"
)

// Tokens are the callers, by token: "admin" an administrator of
// AdminProject, "alice" and "bob" members of P1 and P2, "rita" a reader of
// P1.
var Tokens = map[string]*trustack.Token{
	"admin": {User: trustack.User{ID: "u-admin"}, Project: &trustack.Project{ID: AdminProject}, Roles: roles("admin", "member", "reader")},
	"alice": {User: trustack.User{ID: "u-alice"}, Project: &trustack.Project{ID: P1}, Roles: roles("member", "reader")},
	"bob":   {User: trustack.User{ID: "u-bob"}, Project: &trustack.Project{ID: P2}, Roles: roles("member", "reader")},
	"rita":  {User: trustack.User{ID: "u-rita"}, Project: &trustack.Project{ID: P1}, Roles: roles("reader")},
}

func roles(names ...string) []trustack.Role {
	out := make([]trustack.Role, len(names))
	for i, n := range names {
		out[i] = trustack.Role{Name: n}
	}
	return out
}

// Validator validates the tokens of Tokens; it is an openstack.Validator.
type Validator struct{}

// Validate returns the caller of a token of Tokens, or EUNAUTHORIZED.
func (Validator) Validate(_ context.Context, token string) (*trustack.Token, error) {
	if t, ok := Tokens[token]; ok {
		return t, nil
	}
	return nil, trustack.Errorf(trustack.EUNAUTHORIZED, "The request you have made requires authentication.")
}

// Do makes a request to url with client as the caller of token, with body
// as JSON unless it is a string, and returns the status and the decoded
// body.
func Do(t testing.TB, client *http.Client, token, method, url string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Auth-Token", token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var o map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &o); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, url, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode, o
}

// Must makes a request as Do does that must answer status, and returns
// the body.
func Must(t testing.TB, client *http.Client, status int, token, method, url string, body any) map[string]any {
	t.Helper()
	got, o := Do(t, client, token, method, url, body)
	if got != status {
		t.Fatalf("%s %s as %s: status %d, want %d: %v", method, url, token, got, status, o)
	}
	return o
}

// Images is an image service of one image, for the block storage service
// to make volumes from (volume.Images).
type Images struct{ Image *trustack.Image }

// BootImage returns the image if id is its ID, and ENOTFOUND if not.
func (i Images) BootImage(_ context.Context, _, id string) (*trustack.Image, error) {
	if id != i.Image.ID {
		return nil, trustack.Errorf(trustack.ENOTFOUND, "no image %s", id)
	}
	return i.Image, nil
}
