package client

import (
	"context"
	"fmt"
	"slices"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
)

// findFlavor returns the flavor ref names, by ID or else by name.
func (c *Client) findFlavor(ctx context.Context, ref string) (*flavors.Flavor, error) {
	f, err := flavors.Get(ctx, c.compute, ref).Extract()
	if !notFound(err) {
		return f, apiError(err)
	}
	list, err := c.flavors(ctx)
	if err != nil {
		return nil, err
	}
	list = slices.DeleteFunc(list, func(f flavors.Flavor) bool { return f.Name != ref })
	return pick("flavor", ref, list)
}

// flavors returns the flavors the project may use.
func (c *Client) flavors(ctx context.Context) ([]flavors.Flavor, error) {
	page, err := flavors.ListDetail(c.compute, flavors.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, apiError(err)
	}
	list, err := flavors.ExtractFlavors(page)
	if err != nil {
		return nil, fmt.Errorf("read flavors: %w", err)
	}
	return list, nil
}

// flavorNames maps the IDs of the flavors the project may use to their
// names.
func (c *Client) flavorNames(ctx context.Context) (map[string]string, error) {
	list, err := c.flavors(ctx)
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(list))
	for _, f := range list {
		names[f.ID] = f.Name
	}
	return names, nil
}

// ListFlavors lists the flavors the project may use.
func (c *Client) ListFlavors(ctx context.Context) error {
	list, err := c.flavors(ctx)
	if err != nil {
		return err
	}
	t := &table{columns: []string{"ID", "Name", "RAM", "Disk", "Ephemeral", "VCPUs", "Is Public"}}
	for _, f := range list {
		t.add(f.ID, f.Name, f.RAM, f.Disk, f.Ephemeral, f.VCPUs, f.IsPublic)
	}
	return c.list(t)
}
