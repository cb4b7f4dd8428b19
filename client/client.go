// Package client is the trustack command-line client over the OpenStack
// APIs: it authenticates with Keystone v3 as the OS_* variables of an
// openrc file say, finds the compute, image, network, block storage and
// object storage services in the catalog, and runs the common tasks on
// servers, images, keypairs, flavors, networks, subnets, ports, routers,
// floating IPs, security groups, volumes, volume snapshots, containers
// and objects through gophercloud, printing tables or JSON. It speaks the
// APIs any OpenStack cloud speaks (compute at microversion 2.1, Glance
// v2, Neutron v2.0, Cinder v3, Swift v1), so
// it needs nothing of trustack's own; where trustack says more (how much
// of its image a new volume holds), it draws that too.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"github.com/trustack/trustack"
)

// Config says where the cloud is and who the user is, as the OpenStack
// CLIs' OS_* variables do. Either Token, or a user (Username or UserID)
// and a Password, authenticate.
type Config struct {
	AuthURL           string // OS_AUTH_URL
	Username          string // OS_USERNAME
	UserID            string // OS_USER_ID
	Password          string // OS_PASSWORD
	UserDomainName    string // OS_USER_DOMAIN_NAME
	UserDomainID      string // OS_USER_DOMAIN_ID
	ProjectName       string // OS_PROJECT_NAME
	ProjectID         string // OS_PROJECT_ID
	ProjectDomainName string // OS_PROJECT_DOMAIN_NAME
	ProjectDomainID   string // OS_PROJECT_DOMAIN_ID
	Region            string // OS_REGION_NAME; empty takes the first region
	Interface         string // OS_INTERFACE: public (default), internal or admin
	Token             string // OS_TOKEN: a token to use instead of a password
}

// ConfigFromEnv reads the configuration from the OS_* variables through
// getenv (os.Getenv, say). It returns EINVALID if the variables cannot
// authenticate anyone.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		AuthURL:           getenv("OS_AUTH_URL"),
		Username:          getenv("OS_USERNAME"),
		UserID:            getenv("OS_USER_ID"),
		Password:          getenv("OS_PASSWORD"),
		UserDomainName:    getenv("OS_USER_DOMAIN_NAME"),
		UserDomainID:      getenv("OS_USER_DOMAIN_ID"),
		ProjectName:       getenv("OS_PROJECT_NAME"),
		ProjectID:         getenv("OS_PROJECT_ID"),
		ProjectDomainName: getenv("OS_PROJECT_DOMAIN_NAME"),
		ProjectDomainID:   getenv("OS_PROJECT_DOMAIN_ID"),
		Region:            getenv("OS_REGION_NAME"),
		Interface:         getenv("OS_INTERFACE"),
		Token:             getenv("OS_TOKEN"),
	}
	const hint = ": source an openrc file (trustack up writes DATA_DIR/openrc)"
	switch {
	case c.AuthURL == "":
		return c, trustack.Errorf(trustack.EINVALID, "OS_AUTH_URL is not set%s", hint)
	case c.Token != "":
	case c.Username == "" && c.UserID == "":
		return c, trustack.Errorf(trustack.EINVALID, "neither OS_USERNAME nor OS_USER_ID nor OS_TOKEN is set%s", hint)
	case c.Password == "":
		return c, trustack.Errorf(trustack.EINVALID, "OS_PASSWORD is not set%s", hint)
	}
	return c, nil
}

// authOptions turns the configuration into gophercloud's. As the OpenStack
// CLIs, a token wins over a password, an ID over a name, and a name with
// no domain is in the default domain.
func (c Config) authOptions() gophercloud.AuthOptions {
	o := gophercloud.AuthOptions{IdentityEndpoint: c.AuthURL}
	if c.Token != "" {
		o.TokenID = c.Token
	} else {
		o.Password = c.Password
		if c.UserID != "" {
			o.UserID = c.UserID
		} else {
			o.Username, o.DomainID, o.DomainName = c.Username, c.UserDomainID, c.UserDomainName
			if o.DomainID == "" && o.DomainName == "" {
				o.DomainID = "default"
			}
		}
	}
	switch {
	case c.ProjectID != "":
		o.Scope = &gophercloud.AuthScope{ProjectID: c.ProjectID}
	case c.ProjectName != "":
		o.Scope = &gophercloud.AuthScope{ProjectName: c.ProjectName, DomainID: c.ProjectDomainID, DomainName: c.ProjectDomainName}
		if o.Scope.DomainID == "" && o.Scope.DomainName == "" {
			o.Scope.DomainID = "default"
		}
	}
	return o
}

// Client is an authenticated session with a cloud's compute and image
// services, and its network, block storage and object storage services if
// it has them, that writes what it finds to Out. Its methods are the
// client's commands (those of the network service are Networking's, those
// of block storage BlockStorage's, those of object storage
// ObjectStorage's); a Client is for one goroutine.
type Client struct {
	compute *gophercloud.ServiceClient
	image   *gophercloud.ServiceClient
	// networking is nil for a cloud whose catalog has no network
	// service; noNetwork then says why. blockStorage and noBlockStorage
	// likewise for block storage, objectStorage and noObjectStorage for
	// object storage.
	networking      *gophercloud.ServiceClient
	noNetwork       error
	blockStorage    *gophercloud.ServiceClient
	noBlockStorage  error
	objectStorage   *gophercloud.ServiceClient
	noObjectStorage error
	out             Output
	poll            time.Duration
}

// Networking is a Client whose cloud has a network service; its methods
// are the commands of networks, subnets, ports, routers, floating IPs and
// security groups.
type Networking struct{ *Client }

// Networking returns the client's session with the network service. It
// returns ENOTFOUND if the catalog has no network endpoint.
func (c *Client) Networking() (*Networking, error) {
	if c.networking == nil {
		return nil, c.noNetwork
	}
	return &Networking{c}, nil
}

// Output is where and how a Client writes.
type Output struct {
	// Out receives the results: tables, JSON, console output, keys.
	Out io.Writer
	// Format is how results are written.
	Format Format
	// Progress receives progress reports (of uploads, and of the copies
	// of images into volumes); nil for none.
	Progress io.Writer
	// Terminal says Progress is a terminal, which gets a live progress
	// bar rather than one line at the end.
	Terminal bool
}

// Dial authenticates as cfg says and finds the compute, image, network,
// block storage and object storage services in the catalog. It returns
// EUNAUTHORIZED (or another code) with Keystone's message if Keystone
// refuses, and ENOTFOUND if the catalog lacks the compute or the image
// service; a cloud without a network, a block storage or an object
// storage service is dialled, and only Networking, BlockStorage or
// ObjectStorage fails.
func Dial(ctx context.Context, cfg Config, out Output) (*Client, error) {
	provider, err := openstack.NewClient(cfg.AuthURL)
	if err != nil {
		return nil, trustack.Errorf(trustack.EINVALID, "OS_AUTH_URL %q: %v", cfg.AuthURL, err)
	}
	provider.UserAgent.Prepend("trustack/" + trustack.Version)
	if err := openstack.Authenticate(ctx, provider, cfg.authOptions()); err != nil {
		return nil, fmt.Errorf("authenticate at %s: %w", cfg.AuthURL, apiError(err))
	}
	eo := gophercloud.EndpointOpts{Region: cfg.Region, Availability: gophercloud.Availability(strings.TrimSuffix(cfg.Interface, "URL"))}
	if eo.Availability == "" {
		eo.Availability = gophercloud.AvailabilityPublic
	}
	c := &Client{out: out, poll: 500 * time.Millisecond}
	if c.compute, err = openstack.NewComputeV2(provider, eo); err != nil {
		return nil, catalogError("compute", eo, err)
	}
	if c.image, err = openstack.NewImageV2(provider, eo); err != nil {
		return nil, catalogError("image", eo, err)
	}
	if c.networking, err = openstack.NewNetworkV2(provider, eo); err != nil {
		c.noNetwork = catalogError("network", eo, err)
	}
	if c.blockStorage, err = openstack.NewBlockStorageV3(provider, eo); err != nil {
		c.noBlockStorage = catalogError("block storage", eo, err)
	}
	if c.objectStorage, err = openstack.NewObjectStorageV1(provider, eo); err != nil {
		c.noObjectStorage = catalogError("object storage", eo, err)
	}
	return c, nil
}

func catalogError(service string, eo gophercloud.EndpointOpts, err error) error {
	var nf *gophercloud.ErrEndpointNotFound
	if errors.As(err, &nf) {
		return trustack.Errorf(trustack.ENOTFOUND, "the catalog has no %s endpoint for interface %s in region %q", service, eo.Availability, eo.Region)
	}
	return fmt.Errorf("find the %s service: %w", service, err)
}

// statusCodes map the statuses of the APIs' errors to trustack's codes.
var statusCodes = map[int]string{
	http.StatusBadRequest:            trustack.EINVALID,
	http.StatusUnauthorized:          trustack.EUNAUTHORIZED,
	http.StatusForbidden:             trustack.EFORBIDDEN,
	http.StatusNotFound:              trustack.ENOTFOUND,
	http.StatusConflict:              trustack.ECONFLICT,
	http.StatusRequestEntityTooLarge: trustack.EOVERQUOTA,
	http.StatusTooManyRequests:       trustack.EOVERQUOTA,
	http.StatusNotImplemented:        trustack.EUNAVAILABLE,
	http.StatusServiceUnavailable:    trustack.EUNAVAILABLE,
}

// apiError turns an API's error response into an *trustack.Error with the
// API's own message, its status and the request ID to quote to an
// operator, and Neutron's type of error as its Reason. Other errors (a
// refused connection, say) pass unchanged.
func apiError(err error) error {
	var resp gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &resp) {
		return err
	}
	code, ok := statusCodes[resp.Actual]
	if !ok {
		code = trustack.EINTERNAL
	}
	text, reason := apiMessage(resp.Body, resp.Actual)
	msg := fmt.Sprintf("%s (HTTP %d)", text, resp.Actual)
	for _, h := range []string{"X-Openstack-Request-Id", "X-Compute-Request-Id"} {
		if id := resp.ResponseHeader.Get(h); id != "" {
			msg += " (Request-ID: " + id + ")"
			break
		}
	}
	return &trustack.Error{Code: code, Reason: reason, Message: msg}
}

// apiMessage finds the message in an OpenStack error body: Keystone's and
// Glance's {"error": {"message"}}, Nova's {"itemNotFound": {"message"}},
// Neutron's {"NeutronError": {"type", "message", "detail"}} (with its
// type as the reason, and its detail after the message) or, from older
// Neutrons, {"NeutronError": "message"}. The reason is "" for the other
// APIs.
func apiMessage(body []byte, status int) (msg, reason string) {
	var doc map[string]json.RawMessage
	if json.Unmarshal(body, &doc) == nil {
		for k, raw := range doc {
			var v struct{ Type, Message, Detail string }
			if json.Unmarshal(raw, &v) != nil && k == "NeutronError" {
				json.Unmarshal(raw, &v.Message)
			}
			if v.Detail != "" {
				v.Message += ": " + v.Detail
			}
			if v.Message != "" {
				return v.Message, v.Type
			}
		}
	}
	if s := strings.TrimSpace(string(body)); s != "" && len(s) < 500 && !strings.ContainsAny(s, "<{") {
		return s, ""
	}
	return http.StatusText(status), ""
}

// notFound reports whether err is the API's 404.
func notFound(err error) bool { return gophercloud.ResponseCodeIs(err, http.StatusNotFound) }

// pick chooses the one resource of a kind named ref among those found by
// name: ENOTFOUND if none, ECONFLICT if several, as the OpenStack CLI.
func pick[T any](kind, ref string, found []T) (*T, error) {
	switch len(found) {
	case 0:
		return nil, trustack.Errorf(trustack.ENOTFOUND, "No %s with a name or ID of '%s' exists.", kind, ref)
	case 1:
		return &found[0], nil
	}
	return nil, trustack.Errorf(trustack.ECONFLICT, "More than one %s exists with the name '%s': use its ID.", kind, ref)
}

// find returns the resource of a kind that ref names, as the OpenStack
// CLI finds it: get by ID, or else among those that byName lists, with
// pick's errors.
func find[T any](kind, ref string, get func(id string) (*T, error), byName func(name string) ([]T, error)) (*T, error) {
	v, err := get(ref)
	switch {
	case err == nil:
		return v, nil
	case !notFound(err):
		return nil, apiError(err)
	}
	list, err := byName(ref)
	if err != nil {
		return nil, err
	}
	return pick(kind, ref, list)
}

// all returns what every page of pager holds, as extract reads it; kind
// ("volumes") names what it is in an error.
func all[T any](ctx context.Context, kind string, pager pagination.Pager, extract func(pagination.Page) ([]T, error)) ([]T, error) {
	page, err := pager.AllPages(ctx)
	if err != nil {
		return nil, apiError(err)
	}
	list, err := extract(page)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", kind, err)
	}
	return list, nil
}

// eachOf does do to every resource refs name, and returns the errors of
// those it failed on, each after what was done ("delete network") and the
// resource's name.
func eachOf(what string, refs []string, do func(ref string) error) error {
	var errs []error
	for _, ref := range refs {
		if err := do(ref); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", what, ref, err))
		}
	}
	return errors.Join(errs...)
}

// exactName is a Nova name filter (a regular expression) for one name.
func exactName(name string) string { return "^" + regexp.QuoteMeta(name) + "$" }

// wait calls done every poll interval until it reports true or fails, or
// ctx ends.
func (c *Client) wait(ctx context.Context, done func() (bool, error)) error {
	t := time.NewTicker(c.poll)
	defer t.Stop()
	for {
		ok, err := done()
		if ok || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// waitStatus waits until the resource of a kind with an ID, whose status
// status reads, has the status want ("" for until it is gone), and fails
// with ECONFLICT if it comes to the status failed. poll, if not nil, is
// called at every look that finds it on its way.
func (c *Client) waitStatus(ctx context.Context, kind, id, want, failed string, status func(ctx context.Context, id string) (string, error), poll func()) error {
	return c.wait(ctx, func() (bool, error) {
		s, err := status(ctx, id)
		switch {
		case want == "" && notFound(err):
			return true, nil
		case err != nil:
			return false, apiError(err)
		case s == want:
			return true, nil
		case s == failed:
			return false, trustack.Errorf(trustack.ECONFLICT, "%s %s is in %s", kind, id, s)
		}
		if poll != nil {
			poll()
		}
		return false, nil
	})
}

// deleteAll deletes the resources of a kind that refs name with del,
// which returns the ID of the one it deleted; then, if wait, it waits
// until each is gone, as status (which reads one's status) finds it, and
// fails for one in error_deleting. It tries every resource and returns
// the errors of those it could not delete.
func (c *Client) deleteAll(ctx context.Context, kind string, refs []string, wait bool, del func(ref string) (string, error),
	status func(ctx context.Context, id string) (string, error)) error {
	var ids []string
	err := eachOf("delete "+kind, refs, func(ref string) error {
		id, err := del(ref)
		if err == nil {
			ids = append(ids, id)
		}
		return err
	})
	if !wait {
		return err
	}
	errs := []error{err}
	for _, id := range ids {
		if err := c.waitStatus(ctx, kind, id, "", "error_deleting", status, nil); err != nil {
			errs = append(errs, fmt.Errorf("wait for %s %s to go: %w", kind, id, err))
		}
	}
	return errors.Join(errs...)
}

// options parses a flag's argument of comma-separated KEY=VALUE pairs, as
// the OpenStack CLI's --nic and --allocation-pool take, into a map. It
// returns EINVALID, showing the form the flag wants, for a pair without
// "=" or with an empty value, for a key not among keys, and for a key
// given twice.
func options(flag, arg, form string, keys ...string) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range strings.Split(arg, ",") {
		k, v, ok := strings.Cut(pair, "=")
		if _, dup := out[k]; !ok || v == "" || dup || !slices.Contains(keys, k) {
			return nil, trustack.Errorf(trustack.EINVALID, "%s %q: want %s", flag, arg, form)
		}
		out[k] = v
	}
	return out, nil
}

// keyValues parses KEY=VALUE arguments of a flag (--property, --hint) into
// a map of lists, in the order given. It returns EINVALID for an argument
// without "=" or with an empty key.
func keyValues(flag string, args []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, trustack.Errorf(trustack.EINVALID, "%s %q: want KEY=VALUE", flag, a)
		}
		out[k] = append(out[k], v)
	}
	return out, nil
}
