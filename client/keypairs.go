package client

import (
	"context"
	"fmt"
	"os"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"

	"github.com/trustack/trustack"
)

// CreateKeypair imports the public key in the file at publicKeyFile and
// shows the keypair, or, if publicKeyFile is empty, has the cloud make a
// keypair and writes its private key (the only copy) to Out, as
// `nova keypair-add` does. It returns EINVALID for a file it cannot read,
// and ECONFLICT if the user has a keypair of that name.
func (c *Client) CreateKeypair(ctx context.Context, name, publicKeyFile string) error {
	opts := keypairs.CreateOpts{Name: name}
	if publicKeyFile != "" {
		b, err := os.ReadFile(publicKeyFile)
		if err != nil {
			return trustack.Errorf(trustack.EINVALID, "--public-key: %v", err)
		}
		opts.PublicKey = string(b)
	}
	k, err := keypairs.Create(ctx, c.compute, opts).Extract()
	if err != nil {
		return apiError(err)
	}
	r := record{{"name", k.Name}, {"fingerprint", k.Fingerprint}, {"user_id", k.UserID}}
	if k.PrivateKey == "" {
		return c.show(r)
	}
	if c.out.Format == FormatJSON {
		return c.show(append(r, field{"private_key", k.PrivateKey}))
	}
	_, err = fmt.Fprint(c.out.Out, k.PrivateKey)
	return err
}

// ListKeypairs lists the user's keypairs.
func (c *Client) ListKeypairs(ctx context.Context) error {
	page, err := keypairs.List(c.compute, nil).AllPages(ctx)
	if err != nil {
		return apiError(err)
	}
	list, err := keypairs.ExtractKeyPairs(page)
	if err != nil {
		return fmt.Errorf("read keypairs: %w", err)
	}
	t := &table{columns: []string{"Name", "Fingerprint"}}
	for _, k := range list {
		t.add(k.Name, k.Fingerprint)
	}
	return c.list(t)
}

// DeleteKeypairs deletes the user's keypairs of those names. It tries
// every keypair and returns the errors of those it could not delete.
func (c *Client) DeleteKeypairs(ctx context.Context, names []string) error {
	return eachOf("delete keypair", names, func(name string) error {
		return apiError(keypairs.Delete(ctx, c.compute, name, nil).ExtractErr())
	})
}
