package network

import (
	"net/http"

	"github.com/trustack/trustack"
)

// extension is one of Neutron's API extensions, as Neutron describes it.
type extension struct {
	alias, name, description, updated string
}

// extensions are the extensions the API implements, exactly: Tempest and
// the clients skip what is not listed here and rely on what is.
var extensions = []extension{
	{"allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs", "2013-07-23T10:00:00-00:00"},
	{"binding", "Port Binding", "Expose port bindings of a virtual port to external application", "2014-02-03T10:00:00-00:00"},
	{"ext-gw-mode", "Neutron L3 Configurable external gateway mode", "Extension of the router abstraction for specifying whether SNAT should occur on the external gateway", "2013-03-28T10:00:00-00:00"},
	{"external-net", "Neutron external network", "Adds external network attribute to network resource.", "2013-01-14T10:00:00-00:00"},
	{"extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router", "2013-02-01T10:00:00-00:00"},
	{"filter-validation", "Filter parameters validation", "Provides validation on filter parameters.", "2018-03-21T10:00:00-00:00"},
	{"ip-substring-filtering", "IP address substring filtering", "Provides IP address substring filtering when listing ports", "2017-11-28T09:00:00-00:00"},
	{"net-mtu", "Network MTU", "Provides MTU attribute for a network resource.", "2015-03-25T10:00:00-00:00"},
	{"net-mtu-writable", "Network MTU (writable)", "Provides a writable MTU attribute for a network resource.", "2017-07-12T00:00:00-00:00"},
	{"pagination", "Pagination support", "Extension that indicates that pagination is enabled.", "2016-06-12T00:00:00-00:00"},
	{"port-security", "Port Security", "Provides port security", "2012-07-23T10:00:00-00:00"},
	{"project-id", "project_id field enabled", "Extension that indicates that project_id field is enabled.", "2016-09-09T09:09:09-09:09"},
	{"provider", "Provider Network", "Expose mapping of virtual networks to physical networks", "2012-09-07T10:00:00-00:00"},
	{"quota_details", "Quota details management support", "Expose functions for quotas usage statistics per project", "2017-02-10T10:00:00-00:00"},
	{"quotas", "Quota management support", "Expose functions for quotas management per project", "2012-07-29T10:00:00-00:00"},
	{"router", "Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external networks via a NAT gateway.", "2012-07-20T10:00:00-00:00"},
	{"security-group", "security-group", "The security groups extension.", "2012-10-05T10:00:00-00:00"},
	{"sorting", "Sorting support", "Extension that indicates that sorting is enabled.", "2016-06-12T00:00:00-00:00"},
	{"standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard attributes", "2016-02-10T10:00:00-00:00"},
	{"standard-attr-revisions", "Resource revision numbers", "This extension will display the revision number of neutron resources.", "2016-04-11T10:00:00-00:00"},
	{"standard-attr-tag", "Tag support for resources with standard attribute: floatingip, network, port, router, security_group, subnet", "Enables to set tag on resources with standard attribute.", "2017-01-01T00:00:00-00:00"},
	{"standard-attr-timestamp", "Resource timestamps", "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes.", "2016-09-12T10:00:00-00:00"},
	{"stateful-security-group", "Stateful security group", "Indicates if the security group is stateful or not", "2019-11-26T09:00:00-00:00"},
	{"tag", "Tag support", "Enables to set tag on resources.", "2016-01-01T00:00:00-00:00"},
}

// object renders an extension as Neutron does.
func (e extension) object() object {
	return object{"alias": e.alias, "name": e.name, "description": e.description, "updated": e.updated, "links": []object{}}
}

// listExtensions lists the extensions; anyone authenticated may.
func (h *handler) listExtensions(w http.ResponseWriter, r *http.Request) error {
	out := make([]object, len(extensions))
	for i, e := range extensions {
		out[i] = e.object()
	}
	return reply(w, http.StatusOK, object{"extensions": out})
}

// showExtension shows one extension, by alias.
func (h *handler) showExtension(w http.ResponseWriter, r *http.Request) error {
	alias := r.PathValue("alias")
	for _, e := range extensions {
		if e.alias == alias {
			return reply(w, http.StatusOK, object{"extension": e.object()})
		}
	}
	return trustack.Errorf(trustack.ENOTFOUND, "Extension with alias %s does not exist", alias)
}
