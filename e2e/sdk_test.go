package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	gc "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// sdk reads, through gophercloud (the Go SDK), what the tests poll while
// they wait for a server, a volume or an image to change. The Python CLI
// costs about a second of CPU a run, which a poll every 200 ms would take
// from the guests and the cloud under test on two cores; the CLI stays
// how the tests change things and read what a user reads.
type sdk struct {
	compute, block, image *gophercloud.ServiceClient
}

// sessions are the SDK's sessions, by credentials, each logged in once.
var sessions sync.Map

// sdkOf returns a session with the credentials of an openrc's env.
func sdkOf(t testing.TB, env map[string]string) *sdk {
	t.Helper()
	key := strings.Join([]string{env["OS_AUTH_URL"], env["OS_USERNAME"], env["OS_PASSWORD"], env["OS_PROJECT_NAME"]}, "\x00")
	if s, ok := sessions.Load(key); ok {
		return s.(*sdk)
	}
	provider, err := gc.AuthenticatedClient(context.Background(), gophercloud.AuthOptions{
		IdentityEndpoint: env["OS_AUTH_URL"],
		Username:         env["OS_USERNAME"],
		Password:         env["OS_PASSWORD"],
		DomainName:       env["OS_USER_DOMAIN_NAME"],
		Scope:            &gophercloud.AuthScope{ProjectName: env["OS_PROJECT_NAME"], DomainName: env["OS_PROJECT_DOMAIN_NAME"]},
		AllowReauth:      true,
	})
	if err != nil {
		t.Fatalf("log in as %s with gophercloud: %v", env["OS_USERNAME"], err)
	}
	eo := gophercloud.EndpointOpts{Region: env["OS_REGION_NAME"]}
	s := &sdk{}
	if s.compute, err = gc.NewComputeV2(provider, eo); err != nil {
		t.Fatal(err)
	}
	if s.image, err = gc.NewImageV2(provider, eo); err != nil {
		t.Fatal(err)
	}
	// A cloud without block storage leaves block nil.
	s.block, _ = gc.NewBlockStorageV3(provider, eo)
	sessions.Store(key, s)
	return s
}

// serverState is what a server's details say of its state.
type serverState struct {
	ID        string  `json:"id"`
	Status    string  `json:"status"`
	TaskState *string `json:"OS-EXT-STS:task_state"`
	Host      string  `json:"OS-EXT-SRV-ATTR:host"` // for admins
}

func (s serverState) String() string {
	task := "None"
	if s.TaskState != nil {
		task = *s.TaskState
	}
	return s.Status + " " + task + " on " + s.Host
}

// isID reports whether ref is a UUID, which the APIs take as an ID and
// the clients look for as a name otherwise.
func isID(ref string) bool { return uuidPattern.MatchString(ref) }

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$`)

// one is the only resource of a list that a name found, and what went
// wrong otherwise.
func one[T any](ref string, pager pagination.Pager, extract func(pagination.Page) ([]T, error)) (T, error) {
	var found []T
	err := pager.EachPage(context.Background(), func(_ context.Context, p pagination.Page) (bool, error) {
		page, err := extract(p)
		found = append(found, page...)
		return true, err
	})
	if err == nil && len(found) != 1 {
		err = fmt.Errorf("%d named %q", len(found), ref)
	}
	if err != nil {
		var zero T
		return zero, err
	}
	return found[0], nil
}

// server returns the state of the server that ref names or identifies:
// its status and task state as `openstack server show` gives them, or
// the error that kept it from being read.
func (s *sdk) server(ref string) (serverState, error) {
	if isID(ref) {
		var st serverState
		err := servers.Get(context.Background(), s.compute, ref).ExtractInto(&st)
		return st, err
	}
	// Nova matches names as regular expressions.
	return one(ref, servers.List(s.compute, servers.ListOpts{Name: "^" + regexp.QuoteMeta(ref) + "$"}), func(p pagination.Page) (found []serverState, err error) {
		return found, servers.ExtractServersInto(p, &found)
	})
}

// serverStatus is the status of the server that ref names or identifies,
// or what kept it from being read.
func (s *sdk) serverStatus(ref string) string {
	st, err := s.server(ref)
	if err != nil {
		return err.Error()
	}
	return st.Status
}

// consoleLog is the console output of the server that ref names or
// identifies, as `openstack console log show` gives it, or what kept it
// from being read.
func (s *sdk) consoleLog(ref string) string {
	st, err := s.server(ref)
	if err == nil {
		var out string
		out, err = servers.ShowConsoleOutput(context.Background(), s.compute, st.ID, servers.ShowConsoleOutputOpts{}).Extract()
		if err == nil {
			return out
		}
	}
	return err.Error()
}

// volume returns the volume that ref names or identifies.
func (s *sdk) volume(ref string) (*volumes.Volume, error) {
	if isID(ref) {
		return volumes.Get(context.Background(), s.block, ref).Extract()
	}
	v, err := one(ref, volumes.List(s.block, volumes.ListOpts{Name: ref}), volumes.ExtractVolumes)
	return &v, err
}

// volumeStatus is the status of the volume that ref names or identifies,
// or what kept it from being read.
func (s *sdk) volumeStatus(ref string) string {
	v, err := s.volume(ref)
	if err != nil {
		return err.Error()
	}
	return v.Status
}

// snapshotStatus is the status of the volume snapshot that ref names, or
// what kept it from being read.
func (s *sdk) snapshotStatus(ref string) string {
	sn, err := one(ref, snapshots.List(s.block, snapshots.ListOpts{Name: ref}), snapshots.ExtractSnapshots)
	if err != nil {
		return err.Error()
	}
	return sn.Status
}

// imageStatus is the status of the image that ref names, or what kept it
// from being read.
func (s *sdk) imageStatus(ref string) string {
	im, err := one(ref, images.List(s.image, images.ListOpts{Name: ref}), images.ExtractImages)
	if err != nil {
		return err.Error()
	}
	return string(im.Status)
}
