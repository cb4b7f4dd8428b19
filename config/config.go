// Package config reads trustack's configuration: one INI file in
// oslo.config's dialect (sections, "key = value", # and ; comments), by
// default /etc/trustack/trustack.conf. Every option is declared once, with
// its default and its documentation, in the table of Config.options; the
// same table parses files and prints the annotated default file.
package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultPath is read when no file is named and it exists.
const DefaultPath = "/etc/trustack/trustack.conf"

// minClusterSecret is the length of the shortest [bus] cluster_secret, in
// characters: the bus wants 16 bytes, which 16 characters are at least.
const minClusterSecret = 16

// Config is trustack's configuration. Paths left empty derive from
// DataDir.
type Config struct {
	DataDir string
	Region  string

	Database struct {
		Connection string
	}
	API struct {
		Listen      string
		PublicURL   string
		MaxBodySize int64
	}
	Auth struct {
		TokenExpiration    time.Duration
		CacheTime          time.Duration
		KeyRepository      string
		MaxActiveKeys      int
		PasswordHashRounds int
	}
	Credential struct {
		KeyRepository string
	}
	Image struct {
		Dir       string
		SizeCap   int64
		Store     string
		Container string
		ChunkSize int64
	}
	Bus struct {
		URL           string
		Listen        string
		ClusterListen string
		Routes        []string
		ClusterSecret string
	}
	Scheduler struct {
		Driver              string
		RAMWeightMultiplier float64
		HostSubsetSize      int
		MaxAttempts         int
	}
	Compute struct {
		Workers                 int
		ServiceDownTime         time.Duration
		ConsoleTokenTTL         time.Duration
		ConsoleURL              string
		DefaultAvailabilityZone string
		Driver                  string
		Accel                   string
		ShutdownTimeout         time.Duration
		CPUAllocationRatio      float64
		RAMAllocationRatio      float64
		DiskAllocationRatio     float64
		HeartbeatInterval       time.Duration
		FakeVCPUs               int
		FakeMemoryMB            int
		FakeDiskGB              int
		FakeSnapshotTime        time.Duration
		FakeDelay               time.Duration
	}
	Controller struct {
		Name string
	}
	Agent struct {
		Host             string
		AvailabilityZone string
		HostIP           string
		PhysicalNetworks []string
		NetworkNode      bool
		OverlayInterface string
		Namespace        string
		ConsoleListen    string
	}
	Network struct {
		Driver            string
		TenantNetworkType string
		PhysicalNetworks  []string
		VLANRanges        []string
		VNIRanges         string
		MTU               int
		BaseMAC           string
		VXLANGroup        string
		OVSDB             string
		OVSDatapath       string
	}
	Volume struct {
		Backends    []string
		FileDir     string
		FileFormat  string
		VolumeGroup string
	}
	ObjectStore struct {
		Enabled            string
		RingDir            string
		HashPathPrefix     string
		HashPathSuffix     string
		BackendKey         string
		Devices            string
		BindIP             string
		ObjectPort         int
		ContainerPort      int
		AccountPort        int
		UpdaterInterval    time.Duration
		ReplicatorInterval time.Duration
		ExpirerInterval    time.Duration
		AuditorRate        int64
		RingIP             string
		LocalNodes         int
		S3Listen           string
		S3PublicURL        string
		S3Region           string
		S3Domain           string
	}
	Attestation struct {
		Enabled         string
		Interval        time.Duration
		GracePeriod     time.Duration
		CABundles       []string
		TPM             string
		IMALog          string
		MeasureFiles    []string
		MeasureInterval time.Duration
	}
	Policy struct {
		Dir string
	}
	Log struct {
		Format string
		Level  string
	}
}

// option is one configuration key.
type option struct {
	section, name string
	help          string
	value         value
}

// value is an option's storage: it parses and prints itself.
type value interface {
	set(string) error
	String() string
}

// options declares every option, bound to c's fields. The order is the
// order of the default file.
func (c *Config) options() []option {
	return []option{
		{"DEFAULT", "data_dir", "Directory for trustack's state: the SQLite database, Fernet keys, images. Created if missing.", (*str)(&c.DataDir)},
		{"DEFAULT", "region_name", "Name of this cloud's region, in the service catalog.", (*str)(&c.Region)},
		{"controller", "name", "Name of this controller among those sharing the database (default: the machine's hostname), each one's different. A controller started again under its name takes up at once the builds and actions it left in progress; the others take them over once its lease expires.", (*str)(&c.Controller.Name)},
		{"database", "connection", "Where state is kept: sqlite:///path/to/trustack.db (embedded, the default: $data_dir/trustack.db) or postgres://user:password@host:5432/trustack for several controllers sharing one database.", (*str)(&c.Database.Connection)},
		{"api", "listen", "Address and port the APIs listen on; all services share it under path prefixes (/identity/v3, ...).", (*str)(&c.API.Listen)},
		{"api", "public_url", "Base URL clients reach the APIs at, used in the service catalog and in links (default: http:// and the listen address, with this host's name for a wildcard address).", (*str)(&c.API.PublicURL)},
		{"api", "max_request_body_size", "Largest JSON request body accepted, in bytes; larger ones get 413. Image uploads are not limited by it.", (*i64)(&c.API.MaxBodySize)},
		{"auth", "token_expiration", "Lifetime of a token, in seconds.", (*seconds)(&c.Auth.TokenExpiration)},
		{"auth", "cache_time", "How long a validated token is trusted before the database is read again, in seconds. Changes made on this controller apply at once; changes made on another controller sharing the database take at most this long.", (*seconds)(&c.Auth.CacheTime)},
		{"auth", "key_repository", "Directory of the Fernet keys that sign tokens (default: $data_dir/fernet-keys). Every controller needs the same keys.", (*str)(&c.Auth.KeyRepository)},
		{"auth", "max_active_keys", "How many Fernet keys to keep when rotating: the staged key, the primary, and older keys that still validate tokens. A token outlives max_active_keys - 2 rotations.", (*integer)(&c.Auth.MaxActiveKeys)},
		{"auth", "password_hash_rounds", "bcrypt cost for passwords (4 to 31); each step doubles the time to hash and check a password.", (*integer)(&c.Auth.PasswordHashRounds)},
		{"credential", "key_repository", "Directory of the Fernet keys that encrypt the blobs of credentials (EC2 keys and others) in the database (default: $data_dir/credential-keys). Every controller needs the same keys; unlike the token keys, they are not rotated with `trustack manage fernet rotate`.", (*str)(&c.Credential.KeyRepository)},
		{"image", "filesystem_store_datadir", "Directory of image data, one file per image (default: $data_dir/images). Controllers sharing a database must share it (NFS, for instance): an image's data is where it was uploaded.", (*str)(&c.Image.Dir)},
		{"image", "image_size_cap", "Largest image data accepted, in bytes (default 1 TiB, as Glance's); larger uploads get 413.", (*i64)(&c.Image.SizeCap)},
		{"image", "store", "Where image data is kept: file (in filesystem_store_datadir) or object (in the object store, which must be enabled: Glance's single-tenant Swift store). With object, controllers sharing a database share their images through the object store, with no shared file system.", (*choice)(&c.Image.Store)},
		{"image", "object_store_container", "With store = object: the container of the admin project's account that holds the images, each an object named by its ID; the segments of large images go to the container of the same name with _segments appended.", (*str)(&c.Image.Container)},
		{"image", "object_store_chunk_size", "With store = object: images larger than this many bytes, or uploaded without a size, are written as segments of this size and a static large object's manifest (Glance's swift_store_large_object_chunk_size; default 200 MiB). A large object has at most 1000 segments.", (*i64)(&c.Image.ChunkSize)},
		{"bus", "url", "NATS URLs of the message bus, comma-separated, such as nats://nats1:4222,nats://nats2:4222. On a controller: an external NATS cluster that controllers and agents share, which the controller uses instead of embedding a NATS server; empty: the controller embeds one on listen. On compute hosts: where the bus is; for controllers whose embedded servers form a cluster (cluster_listen), every controller's bus address, so that agents reach another controller when one is down.", (*str)(&c.Bus.URL)},
		{"bus", "listen", "Address and port of the embedded NATS server, where agents connect (when url is empty).", (*str)(&c.Bus.Listen)},
		{"bus", "cluster_listen", "Address and port where this controller's embedded NATS server listens for the routes of the other controllers' servers, with which it forms one NATS cluster, so that agents connected to any controller reach every controller. Empty: not clustered. Needs cluster_secret, and url empty.", (*str)(&c.Bus.ClusterListen)},
		{"bus", "routes", "Comma-separated addresses (HOST:PORT) of the other controllers' cluster_listen. The same list on every controller, its own address included, will do; a controller not up yet is tried every second.", (*list)(&c.Bus.Routes)},
		{"bus", "cluster_secret", "Secret, at least 16 characters, shared by every controller of the cluster: their servers accept routes only from servers that present it.", (*str)(&c.Bus.ClusterSecret)},
		{"scheduler", "driver", "How hosts are chosen: acaas (the physical domain that best fits the server's requirements, then its collaborating domains, a random host among those that can take it), filter (filters, then weighers, as Nova's filter scheduler), simple (the least loaded host) or chance (a random host). All keep capacity, requirements and isolation, availability zones, server groups and host hints.", (*choice)(&c.Scheduler.Driver)},
		{"scheduler", "ram_weight_multiplier", "For the filter driver: weight of free RAM. Positive spreads servers over hosts, negative packs them onto as few as possible.", (*float)(&c.Scheduler.RAMWeightMultiplier)},
		{"scheduler", "host_subset_size", "For the filter driver: choose at random among this many of the best hosts, which spreads concurrent placements.", (*integer)(&c.Scheduler.HostSubsetSize)},
		{"scheduler", "max_attempts", "How many hosts a build tries before the server goes to ERROR.", (*integer)(&c.Scheduler.MaxAttempts)},
		{"compute", "workers", "How many builds and server actions the controller carries out at once.", (*integer)(&c.Compute.Workers)},
		{"compute", "service_down_time", "Seconds without a heartbeat after which a compute host counts as down and gets no new servers.", (*seconds)(&c.Compute.ServiceDownTime)},
		{"compute", "console_token_ttl", "Seconds a remote console's URL may be used, once, before it expires (Nova's [consoleauth] token_ttl).", (*seconds)(&c.Compute.ConsoleTokenTTL)},
		{"compute", "console_url", "Base URL of the console proxy in the console URLs given to users, such as https://console.example.com, for a proxy on hosts of its own (controllers that only these URLs lead to); default: public_url.", (*str)(&c.Compute.ConsoleURL)},
		{"compute", "default_availability_zone", "Availability zone of compute hosts that name none.", (*str)(&c.Compute.DefaultAvailabilityZone)},
		{"compute", "driver", "On compute hosts: the hypervisor driver: qemu (each server a QEMU virtual machine) or fake (servers simulated in memory).", (*choice)(&c.Compute.Driver)},
		{"compute", "accel", "For the qemu driver: how guests run: kvm, tcg (emulation, slow but everywhere), or auto (KVM if a canary guest boots under it, else TCG).", (*choice)(&c.Compute.Accel)},
		{"compute", "shutdown_timeout", "For the qemu driver: seconds a guest has to power off after an ACPI request (stop, soft reboot) before it is forced off.", (*seconds)(&c.Compute.ShutdownTimeout)},
		{"compute", "cpu_allocation_ratio", "On compute hosts: how far vCPUs may be overcommitted.", (*float)(&c.Compute.CPUAllocationRatio)},
		{"compute", "ram_allocation_ratio", "On compute hosts: how far memory may be overcommitted; the driver refuses servers beyond it.", (*float)(&c.Compute.RAMAllocationRatio)},
		{"compute", "disk_allocation_ratio", "On compute hosts: how far disk may be overcommitted.", (*float)(&c.Compute.DiskAllocationRatio)},
		{"compute", "heartbeat_interval", "On compute hosts: seconds between heartbeats to the controllers.", (*seconds)(&c.Compute.HeartbeatInterval)},
		{"compute", "fake_vcpus", "For the fake driver: the vCPUs the simulated host offers.", (*integer)(&c.Compute.FakeVCPUs)},
		{"compute", "fake_memory_mb", "For the fake driver: the memory the simulated host offers, in MiB.", (*integer)(&c.Compute.FakeMemoryMB)},
		{"compute", "fake_disk_gb", "For the fake driver: the disk the simulated host offers, in GiB.", (*integer)(&c.Compute.FakeDiskGB)},
		{"compute", "fake_snapshot_seconds", "For the fake driver: how long a snapshot takes, in seconds, as real ones take a while.", (*seconds)(&c.Compute.FakeSnapshotTime)},
		{"compute", "fake_delay_seconds", "For the fake driver: how long every other operation (spawn, power, destroy) takes at least, in seconds; 0: at once.", (*seconds)(&c.Compute.FakeDelay)},
		{"agent", "host", "Name of this compute host, unique in the cloud (default: the machine's hostname).", (*str)(&c.Agent.Host)},
		{"agent", "availability_zone", "Availability zone of this compute host (default: the controller's default_availability_zone).", (*str)(&c.Agent.AvailabilityZone)},
		{"agent", "host_ip", "Address of this compute host, shown to operators.", (*str)(&c.Agent.HostIP)},
		{"agent", "physical_networks", "Comma-separated physical networks this compute host is wired to, each as NAME:INTERFACE (the host's interface that carries it); flat and VLAN networks on a physical network are placed only on hosts wired to it.", (*list)(&c.Agent.PhysicalNetworks)},
		{"agent", "network_node", "Whether this compute host runs the cloud's DHCP servers and routers (yes or no); the first network node that is up, by name, does.", (*boolean)(&c.Agent.NetworkNode)},
		{"agent", "overlay_interface", "The interface of this compute host that VXLAN networks go over, between hosts; needed for VXLAN networks with the linux network driver.", (*str)(&c.Agent.OverlayInterface)},
		{"agent", "namespace", "The network namespace (a name under /run/netns) this compute host's network and guests are in; empty for the agent's own. `trustack up --network linux` puts each of its hosts in one.", (*str)(&c.Agent.Namespace)},
		{"agent", "console_listen", "Address (host:port) on which this compute host serves its guests' remote consoles (VNC, serial) to the controllers' console proxy, which must reach it (at host_ip if this address is 0.0.0.0); port 0 picks a free port (default: host_ip, or 127.0.0.1, with a free port).", (*str)(&c.Agent.ConsoleListen)},
		{"network", "driver", "On compute hosts: how ports, security groups, DHCP and routers are wired: linux (in the kernel: bridges, taps, VXLAN, Open vSwitch for flat and VLAN networks, nftables, dnsmasq and routers in network namespaces) or fake (kept in memory, for tests and simulated hosts).", (*choice)(&c.Network.Driver)},
		{"network", "vxlan_group", "On compute hosts: the IPv4 multicast block VXLAN networks flood to, VNI n to the block's address n modulo its size.", (*str)(&c.Network.VXLANGroup)},
		{"network", "ovsdb", "On compute hosts: the Open vSwitch database that flat and VLAN networks are wired through.", (*str)(&c.Network.OVSDB)},
		{"network", "ovs_datapath", "On compute hosts: Open vSwitch's datapath: system (the kernel's), netdev (userspace, where the kernel has no openvswitch module) or auto (system if the module is there).", (*choice)(&c.Network.OVSDatapath)},
		{"network", "tenant_network_type", "Segment type of the networks users create without naming one: vxlan, vlan (from vlan_ranges) or local.", (*choice)(&c.Network.TenantNetworkType)},
		{"network", "physical_networks", "Comma-separated names of the physical networks that flat and VLAN networks may be on, as the hosts' [agent] physical_networks name them.", (*list)(&c.Network.PhysicalNetworks)},
		{"network", "vlan_ranges", "Comma-separated VLAN ranges users' networks take, each as PHYSNET:FIRST:LAST, as Neutron's network_vlan_ranges; empty: VLAN networks only from an administrator who names the VLAN.", (*list)(&c.Network.VLANRanges)},
		{"network", "vni_ranges", "VXLAN VNIs users' networks take, as FIRST:LAST.", (*str)(&c.Network.VNIRanges)},
		{"network", "mtu", "MTU of the physical networks; VXLAN networks get 50 bytes less, for the encapsulation.", (*integer)(&c.Network.MTU)},
		{"network", "base_mac", "MAC addresses of ports start with the first three bytes of this one, the rest random, as Neutron's base_mac.", (*str)(&c.Network.BaseMAC)},
		{"volume", "backends", "On storage hosts: comma-separated volume backends this host runs, which volume types name as their volume_backend_name: file (volumes as files in file_dir), lvm (thin logical volumes of volume_group). Empty: the host keeps no volumes. `trustack up` runs file on its first host unless this names others.", (*list)(&c.Volume.Backends)},
		{"volume", "file_dir", "On storage hosts: the directory of the file backend's volumes; {host_dir} stands for the host's directory.", (*str)(&c.Volume.FileDir)},
		{"volume", "file_format", "On storage hosts: the format of the file backend's new volumes: qcow2 (thin: a volume takes the space its data does) or raw (sparse files).", (*choice)(&c.Volume.FileFormat)},
		{"volume", "volume_group", "On storage hosts: the LVM volume group of the lvm backend, made by the operator (vgcreate); the backend makes a thin pool in it, trustack-pool, of 95% of its free space, and keeps each volume as a thin logical volume of that pool, snapshots as thin snapshots.", (*str)(&c.Volume.VolumeGroup)},
		{"object_store", "enabled", "Whether the controller serves the object store's Swift API at /object-store/v1: yes, no, or auto (yes when ring_dir holds the rings). The storage nodes it reaches through the rings run `trustack storage`; `trustack up` runs local_nodes of them itself.", (*choice)(&c.ObjectStore.Enabled)},
		{"object_store", "ring_dir", "Directory of the rings (account.ring.gz, container.ring.gz, object.ring.gz) that say which storage nodes hold what, and of their builders (`trustack manage ring`). Every proxy and storage node needs the same rings (default: $data_dir/rings).", (*str)(&c.ObjectStore.RingDir)},
		{"object_store", "hash_path_prefix", "Secret mixed into the hashes that place names on the rings, so that no user can choose names that land on one partition; the same on every proxy and storage node, and never changed once data is stored (that would lose it). `trustack up` makes one.", (*str)(&c.ObjectStore.HashPathPrefix)},
		{"object_store", "hash_path_suffix", "Second secret of the hashes, as hash_path_prefix.", (*str)(&c.ObjectStore.HashPathSuffix)},
		{"object_store", "backend_key", "Secret that proxies send with every request to storage nodes, which refuse requests without it; the same everywhere. Empty: the storage nodes' network is their only protection. `trustack up` makes one.", (*str)(&c.ObjectStore.BackendKey)},
		{"object_store", "devices", "On storage nodes: the directory of the node's devices, each a directory named as the rings name the device (a disk mounted there, in production); a device missing is answered 507 and its data served by other replicas (default: $data_dir/devices).", (*str)(&c.ObjectStore.Devices)},
		{"object_store", "bind_ip", "On storage nodes: the address the object, container and account servers listen on.", (*str)(&c.ObjectStore.BindIP)},
		{"object_store", "object_port", "On storage nodes: the object server's port, as the object ring names it.", (*integer)(&c.ObjectStore.ObjectPort)},
		{"object_store", "container_port", "On storage nodes: the container server's port, as the container ring names it.", (*integer)(&c.ObjectStore.ContainerPort)},
		{"object_store", "account_port", "On storage nodes: the account server's port, as the account ring names it.", (*integer)(&c.ObjectStore.AccountPort)},
		{"object_store", "updater_interval", "On storage nodes: seconds between two passes of the updaters, which send containers the object updates that could not reach them at once, and accounts their containers' counts.", (*seconds)(&c.ObjectStore.UpdaterInterval)},
		{"object_store", "replicator_interval", "On storage nodes: seconds between two passes of the replicators, which compare what the node holds with the other replicas and send them what they lack, and hand what the node holds as a handoff to the primaries.", (*seconds)(&c.ObjectStore.ReplicatorInterval)},
		{"object_store", "expirer_interval", "On storage nodes: seconds between two passes of the object expirer (run beside the container server), which deletes the objects whose X-Delete-At (or X-Delete-After) has passed, removing them from their containers' listings; until it does, an expired object answers 404 but is still listed and takes space. 0: the node runs no expirer.", (*seconds)(&c.ObjectStore.ExpirerInterval)},
		{"object_store", "auditor_bytes_per_second", "On storage nodes: how fast the auditor reads every object, checking it against its ETag; a rotten copy is quarantined and replaced by replication.", (*i64)(&c.ObjectStore.AuditorRate)},
		{"object_store", "ring_ip", "On storage nodes: the address the rings name this node by (default: bind_ip), with which the replicators find its devices.", (*str)(&c.ObjectStore.RingIP)},
		{"object_store", "s3_listen", "Address and port of the S3 API on the object store's data (path-style: http://HOST:PORT/BUCKET/KEY), which clients sign with EC2 credentials (`openstack ec2 credentials create`). Empty: no S3 API. `trustack up` serves it on its --s3-listen.", (*str)(&c.ObjectStore.S3Listen)},
		{"object_store", "s3_public_url", "URL clients reach the S3 API at, in the service catalog (type s3) (default: http:// and s3_listen, with this host's name for a wildcard address).", (*str)(&c.ObjectStore.S3PublicURL)},
		{"object_store", "s3_region", "Region S3 clients sign their requests for and buckets are located in (as Swift's s3api location).", (*str)(&c.ObjectStore.S3Region)},
		{"object_store", "s3_domain", "Domain under which the S3 API also serves buckets as hosts (virtual-hosted style: http://BUCKET.DOMAIN/KEY; a wildcard DNS name pointing at s3_listen). Empty: path style only.", (*str)(&c.ObjectStore.S3Domain)},
		{"object_store", "local_nodes", "For `trustack up`: how many storage nodes it runs, each with one device in a directory of its own and in a zone of its own, three replicas on them (fewer with fewer nodes); 0 for no object store.", (*integer)(&c.ObjectStore.LocalNodes)},
		{"attestation", "enabled", "Whether compute hosts must prove their integrity with their TPM before they get servers, and keep proving it: yes, no, or auto (yes for `trustack server`; for `trustack up` when swtpm is installed, each simulated host getting its own swtpm). With it, the embedded bus admits only agents whose TPM registered.", (*choice)(&c.Attestation.Enabled)},
		{"attestation", "interval", "Seconds between two attestations of a host (each within 10% of it, so that hosts spread out); a host is also attested at once when its measurements change.", (*seconds)(&c.Attestation.Interval)},
		{"attestation", "grace_period", "Seconds a host may leave attestation requests unanswered, keeping its servers, before it is put out of scheduling and its servers are migrated. An untrusted host is put out at once.", (*seconds)(&c.Attestation.GracePeriod)},
		{"attestation", "ca_bundles", "Comma-separated PEM files of the TPM manufacturers' CAs that EK certificates must chain to (intermediate CAs too). A TPM of another manufacturer registers only once an operator approves its EK (trustack manage ek approve). `trustack up` adds the CA of its swtpm instances.", (*list)(&c.Attestation.CABundles)},
		{"attestation", "tpm", "On compute hosts: the TPM, a device such as /dev/tpmrm0 or an swtpm instance as swtpm:HOST:PORT,HOST:CTRLPORT.", (*str)(&c.Attestation.TPM)},
		{"attestation", "ima_log", "On compute hosts: the kernel's binary IMA measurement log. If it cannot be read, the agent measures measure_files in userspace, extending PCR 10 as the kernel would, and says so in its log and in the host's record.", (*str)(&c.Attestation.IMALog)},
		{"attestation", "measure_files", "On compute hosts, in userspace measurement mode: comma-separated files or glob patterns to measure, besides the trustack binary; {host_dir} stands for the host's directory. Default: the QEMU binary, this configuration file and the shared libraries in /usr/lib/x86_64-linux-gnu/libc.so.6.", (*list)(&c.Attestation.MeasureFiles)},
		{"attestation", "measure_interval", "On compute hosts, in userspace measurement mode: seconds between two looks for changed files.", (*seconds)(&c.Attestation.MeasureInterval)},
		{"policy", "dir", "Directory of policy files, one per API as OpenStack services have: identity.yaml (Keystone's rules), image.yaml (Glance's), compute.yaml (Nova's) and network.yaml (Neutron's), in YAML or JSON. Each overrides the API's default rules, one by one; `trustack policy defaults API` prints them. Missing files keep the defaults.", (*str)(&c.Policy.Dir)},
		{"log", "format", "Log format: text or json.", (*choice)(&c.Log.Format)},
		{"log", "level", "Least severe level logged: debug, info, warn or error.", (*choice)(&c.Log.Level)},
	}
}

// Default returns the configuration with every default.
func Default() *Config {
	c := &Config{DataDir: "/var/lib/trustack", Region: "RegionOne"}
	c.API.Listen = "0.0.0.0:5000"
	c.API.MaxBodySize = 114688
	c.Auth.TokenExpiration = time.Hour
	c.Auth.CacheTime = 5 * time.Second
	c.Auth.MaxActiveKeys = 3
	c.Auth.PasswordHashRounds = 12
	c.Image.SizeCap = 1 << 40
	c.Image.Store = "file"
	c.Image.Container = "glance"
	c.Image.ChunkSize = 200 << 20
	c.Bus.Listen = "0.0.0.0:4222"
	c.Scheduler.Driver = "acaas"
	c.Scheduler.RAMWeightMultiplier = 1.0
	c.Scheduler.HostSubsetSize = 1
	c.Scheduler.MaxAttempts = 3
	c.Compute.Workers = 64
	c.Compute.ServiceDownTime = 60 * time.Second
	c.Compute.ConsoleTokenTTL = 600 * time.Second
	c.Compute.DefaultAvailabilityZone = "nova"
	c.Compute.Driver = "fake"
	c.Compute.Accel = "auto"
	c.Compute.ShutdownTimeout = 60 * time.Second
	c.Compute.CPUAllocationRatio = 4.0
	c.Compute.RAMAllocationRatio = 1.0
	c.Compute.DiskAllocationRatio = 1.0
	c.Compute.HeartbeatInterval = 10 * time.Second
	c.Compute.FakeVCPUs = 8
	c.Compute.FakeMemoryMB = 16384
	c.Compute.FakeDiskGB = 200
	c.Compute.FakeSnapshotTime = 2 * time.Second
	c.Agent.PhysicalNetworks = []string{"physnet1:eth1", "public:eth2"}
	c.Network.Driver = "fake"
	c.Network.TenantNetworkType = "vxlan"
	c.Network.PhysicalNetworks = []string{"physnet1", "public"}
	c.Network.VNIRanges = "1:65535"
	c.Network.MTU = 1500
	c.Network.BaseMAC = "fa:16:3e:00:00:00"
	c.Network.VXLANGroup = "239.1.0.0/16"
	c.Network.OVSDB = "unix:/run/openvswitch/db.sock"
	c.Network.OVSDatapath = "auto"
	c.Volume.FileDir = "{host_dir}/volumes"
	c.Volume.FileFormat = "qcow2"
	c.Volume.VolumeGroup = "trustack-volumes"
	c.Attestation.Enabled = "auto"
	c.ObjectStore.Enabled = "auto"
	c.ObjectStore.BindIP = "0.0.0.0"
	c.ObjectStore.ObjectPort = 6200
	c.ObjectStore.ContainerPort = 6201
	c.ObjectStore.AccountPort = 6202
	c.ObjectStore.UpdaterInterval = 5 * time.Second
	c.ObjectStore.ReplicatorInterval = 30 * time.Second
	c.ObjectStore.ExpirerInterval = 300 * time.Second
	c.ObjectStore.AuditorRate = 10 << 20
	c.ObjectStore.LocalNodes = 4
	c.ObjectStore.S3Region = "us-east-1"
	c.Attestation.Interval = 60 * time.Second
	c.Attestation.GracePeriod = 120 * time.Second
	c.Attestation.TPM = "/dev/tpmrm0"
	c.Attestation.IMALog = "/sys/kernel/security/ima/binary_runtime_measurements"
	c.Attestation.MeasureFiles = []string{"/usr/bin/qemu-system-x86_64", "/etc/trustack/trustack.conf", "/usr/lib/x86_64-linux-gnu/libc.so.6"}
	c.Attestation.MeasureInterval = 10 * time.Second
	c.Policy.Dir = "/etc/trustack/policy.d"
	c.Log.Format = "text"
	c.Log.Level = "info"
	return c
}

// Load returns the defaults overridden by the file at path; "" reads
// DefaultPath if it exists.
func Load(path string) (*Config, error) {
	c := Default()
	if path == "" {
		if _, err := os.Stat(DefaultPath); errors.Is(err, fs.ErrNotExist) {
			return c, c.check()
		}
		path = DefaultPath
	}
	return LoadOver(c, path)
}

// LoadOver overrides base with the file at path, and checks the result:
// what the file does not set keeps base's value.
func LoadOver(base *Config, path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	if err := base.parse(f, path); err != nil {
		return nil, err
	}
	return base, base.check()
}

// parse applies an INI file to c. An unknown section or option is an
// error, so that a misspelt option does not go unnoticed.
func (c *Config) parse(r io.Reader, name string) error {
	byKey := map[string]value{}
	sections := map[string]bool{}
	for _, o := range c.options() {
		byKey[o.section+"."+o.name] = o.value
		sections[o.section] = true
	}
	section := ""
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") {
				return fmt.Errorf("%s:%d: malformed section header %q", name, n, line)
			}
			section = strings.TrimSpace(line[1 : len(line)-1])
			if !sections[section] {
				return fmt.Errorf("%s:%d: unknown section [%s]", name, n, section)
			}
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s:%d: want key = value, got %q", name, n, line)
		}
		if section == "" {
			return fmt.Errorf("%s:%d: option before any [section]", name, n)
		}
		key = strings.TrimSpace(key)
		v, ok := byKey[section+"."+key]
		if !ok {
			return fmt.Errorf("%s:%d: unknown option %q in [%s]", name, n, key, section)
		}
		if err := v.set(strings.TrimSpace(val)); err != nil {
			return fmt.Errorf("%s:%d: [%s] %s: %v", name, n, section, key, err)
		}
	}
	return sc.Err()
}

// check validates values that parse but make no sense.
func (c *Config) check() error {
	switch {
	case c.Log.Format != "text" && c.Log.Format != "json":
		return fmt.Errorf("config: [log] format must be text or json, not %q", c.Log.Format)
	case !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level):
		return fmt.Errorf("config: [log] level must be debug, info, warn or error, not %q", c.Log.Level)
	case c.Auth.TokenExpiration <= 0:
		return fmt.Errorf("config: [auth] token_expiration must be positive")
	case c.Auth.MaxActiveKeys < 2:
		return fmt.Errorf("config: [auth] max_active_keys must be at least 2")
	case c.API.MaxBodySize <= 0:
		return fmt.Errorf("config: [api] max_request_body_size must be positive")
	case c.Image.SizeCap <= 0:
		return fmt.Errorf("config: [image] image_size_cap must be positive")
	case c.Image.Store != "file" && c.Image.Store != "object":
		return fmt.Errorf("config: [image] store must be file or object, not %q", c.Image.Store)
	case c.Image.Store == "object" && c.ObjectStore.Enabled == "no":
		return fmt.Errorf("config: [image] store = object needs the object store: [object_store] enabled is no")
	case c.Image.Container == "":
		return fmt.Errorf("config: [image] object_store_container must not be empty")
	case c.Image.ChunkSize <= 0:
		return fmt.Errorf("config: [image] object_store_chunk_size must be positive")
	case !slices.Contains([]string{"acaas", "filter", "simple", "chance"}, c.Scheduler.Driver):
		return fmt.Errorf("config: [scheduler] driver must be acaas, filter, simple or chance, not %q", c.Scheduler.Driver)
	case !slices.Contains([]string{"fake", "qemu"}, c.Compute.Driver):
		return fmt.Errorf("config: [compute] driver must be qemu or fake, not %q", c.Compute.Driver)
	case !slices.Contains([]string{"auto", "kvm", "tcg"}, c.Compute.Accel):
		return fmt.Errorf("config: [compute] accel must be auto, kvm or tcg, not %q", c.Compute.Accel)
	case c.Compute.Workers < 1 || c.Scheduler.MaxAttempts < 1 || c.Scheduler.HostSubsetSize < 1:
		return fmt.Errorf("config: [compute] workers, [scheduler] max_attempts and host_subset_size must be at least 1")
	case !slices.Contains([]string{"auto", "yes", "no"}, c.ObjectStore.Enabled):
		return fmt.Errorf("config: [object_store] enabled must be auto, yes or no, not %q", c.ObjectStore.Enabled)
	case c.ObjectStore.UpdaterInterval < time.Second || c.ObjectStore.ReplicatorInterval < time.Second:
		return fmt.Errorf("config: [object_store] updater_interval and replicator_interval must be at least 1 second")
	case c.ObjectStore.ExpirerInterval > 0 && c.ObjectStore.ExpirerInterval < time.Second:
		return fmt.Errorf("config: [object_store] expirer_interval must be 0 (no expirer) or at least 1 second")
	case c.ObjectStore.AuditorRate < 1:
		return fmt.Errorf("config: [object_store] auditor_bytes_per_second must be positive")
	case c.ObjectStore.LocalNodes < 0:
		return fmt.Errorf("config: [object_store] local_nodes must not be negative")
	case !slices.Contains([]string{"auto", "yes", "no"}, c.Attestation.Enabled):
		return fmt.Errorf("config: [attestation] enabled must be auto, yes or no, not %q", c.Attestation.Enabled)
	case c.Attestation.Interval < time.Second || c.Attestation.MeasureInterval < time.Second:
		return fmt.Errorf("config: [attestation] interval and measure_interval must be at least 1 second")
	case c.Attestation.GracePeriod < c.Compute.ServiceDownTime:
		// Revoked sooner, a lost host's servers would be migrated, which
		// needs its agent, instead of evacuated.
		return fmt.Errorf("config: [attestation] grace_period (%s) must be at least [compute] service_down_time (%s), so that the servers of a host lost for longer are evacuated", c.Attestation.GracePeriod, c.Compute.ServiceDownTime)
	case c.Compute.CPUAllocationRatio <= 0 || c.Compute.RAMAllocationRatio <= 0 || c.Compute.DiskAllocationRatio <= 0:
		return fmt.Errorf("config: [compute] allocation ratios must be positive")
	case !slices.Contains([]string{"fake", "linux"}, c.Network.Driver):
		return fmt.Errorf("config: [network] driver must be linux or fake, not %q", c.Network.Driver)
	case !slices.Contains([]string{"auto", "system", "netdev"}, c.Network.OVSDatapath):
		return fmt.Errorf("config: [network] ovs_datapath must be auto, system or netdev, not %q", c.Network.OVSDatapath)
	case !slices.Contains([]string{"vxlan", "vlan", "local"}, c.Network.TenantNetworkType):
		return fmt.Errorf("config: [network] tenant_network_type must be vxlan, vlan or local, not %q", c.Network.TenantNetworkType)
	case c.Network.MTU < 576:
		return fmt.Errorf("config: [network] mtu must be at least 576")
	case !slices.Contains([]string{"qcow2", "raw"}, c.Volume.FileFormat):
		return fmt.Errorf("config: [volume] file_format must be qcow2 or raw, not %q", c.Volume.FileFormat)
	case len(c.Bus.Routes) > 0 && c.Bus.ClusterListen == "":
		return fmt.Errorf("config: [bus] routes needs [bus] cluster_listen: a controller routes to the others from the cluster it listens on")
	case c.Bus.ClusterListen != "" && c.Bus.URL != "":
		return fmt.Errorf("config: [bus] cluster_listen and url are exclusive: a controller with url uses that external NATS and embeds no server to cluster")
	case c.Bus.ClusterListen != "" && utf8.RuneCountInString(c.Bus.ClusterSecret) < minClusterSecret:
		return fmt.Errorf("config: [bus] cluster_listen needs a [bus] cluster_secret of at least %d characters, got %d", minClusterSecret, utf8.RuneCountInString(c.Bus.ClusterSecret))
	}
	for _, b := range c.Volume.Backends {
		if b != "file" && b != "lvm" {
			return fmt.Errorf("config: [volume] backends: unknown backend %q (there are file and lvm)", b)
		}
	}
	if _, err := c.VLANRanges(); err != nil {
		return err
	}
	if _, err := c.VNIRange(); err != nil {
		return err
	}
	if _, err := c.BaseMAC(); err != nil {
		return err
	}
	if _, err := c.HostPhysicalNetworks(); err != nil {
		return err
	}
	if _, err := c.VXLANGroup(); err != nil {
		return err
	}
	return nil
}

// VXLANGroup returns [network] vxlan_group.
func (c *Config) VXLANGroup() (netip.Prefix, error) {
	p, err := netip.ParsePrefix(c.Network.VXLANGroup)
	if err != nil || !p.Addr().Is4() || !p.Addr().IsMulticast() {
		return netip.Prefix{}, fmt.Errorf("config: [network] vxlan_group: want an IPv4 multicast block such as 239.1.0.0/16, got %q", c.Network.VXLANGroup)
	}
	return p, nil
}

// VLANRanges returns [network] vlan_ranges, by physical network.
func (c *Config) VLANRanges() (map[string][2]int, error) {
	out := map[string][2]int{}
	for _, r := range c.Network.VLANRanges {
		parts := strings.Split(r, ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("config: [network] vlan_ranges: want PHYSNET:FIRST:LAST, got %q", r)
		}
		lo, err1 := strconv.Atoi(parts[1])
		hi, err2 := strconv.Atoi(parts[2])
		if err1 != nil || err2 != nil || lo < 1 || hi > 4094 || lo > hi {
			return nil, fmt.Errorf("config: [network] vlan_ranges: %q is not a range of VLAN IDs (1 to 4094)", r)
		}
		out[parts[0]] = [2]int{lo, hi}
	}
	return out, nil
}

// VNIRange returns [network] vni_ranges.
func (c *Config) VNIRange() ([2]int, error) {
	a, b, ok := strings.Cut(c.Network.VNIRanges, ":")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || lo < 1 || hi >= 1<<24 || lo > hi {
		return [2]int{}, fmt.Errorf("config: [network] vni_ranges: %q is not a range of VNIs (1 to 16777215)", c.Network.VNIRanges)
	}
	return [2]int{lo, hi}, nil
}

// BaseMAC returns the first three bytes of [network] base_mac.
func (c *Config) BaseMAC() ([3]byte, error) {
	hw, err := net.ParseMAC(c.Network.BaseMAC)
	if err != nil || len(hw) != 6 || hw[0]&1 == 1 {
		return [3]byte{}, fmt.Errorf("config: [network] base_mac: %q is not a unicast MAC address", c.Network.BaseMAC)
	}
	return [3]byte{hw[0], hw[1], hw[2]}, nil
}

// HostPhysicalNetworks returns [agent] physical_networks: the host's
// interface of each physical network it is wired to, by name.
func (c *Config) HostPhysicalNetworks() (map[string]string, error) {
	out := map[string]string{}
	for _, m := range c.Agent.PhysicalNetworks {
		name, iface, ok := strings.Cut(m, ":")
		if !ok || name == "" || iface == "" {
			return nil, fmt.Errorf("config: [agent] physical_networks: want NAME:INTERFACE, got %q", m)
		}
		out[name] = iface
	}
	return out, nil
}

// Derived settings.

// DatabaseDSN returns the database connection, defaulting to SQLite in the
// data directory.
func (c *Config) DatabaseDSN() string {
	if c.Database.Connection != "" {
		return c.Database.Connection
	}
	return "sqlite://" + filepath.Join(c.DataDir, "trustack.db")
}

// KeyRepositoryDir returns the Fernet key directory.
func (c *Config) KeyRepositoryDir() string {
	if c.Auth.KeyRepository != "" {
		return c.Auth.KeyRepository
	}
	return filepath.Join(c.DataDir, "fernet-keys")
}

// CredentialKeyRepositoryDir returns the directory of the Fernet keys
// that encrypt credentials.
func (c *Config) CredentialKeyRepositoryDir() string {
	if c.Credential.KeyRepository != "" {
		return c.Credential.KeyRepository
	}
	return filepath.Join(c.DataDir, "credential-keys")
}

// RingDir returns the directory of the object store's rings.
func (c *Config) RingDir() string {
	if c.ObjectStore.RingDir != "" {
		return c.ObjectStore.RingDir
	}
	return filepath.Join(c.DataDir, "rings")
}

// DevicesDir returns the directory of a storage node's devices.
func (c *Config) DevicesDir() string {
	if c.ObjectStore.Devices != "" {
		return c.ObjectStore.Devices
	}
	return filepath.Join(c.DataDir, "devices")
}

// ImageDir returns the image data directory.
func (c *Config) ImageDir() string {
	if c.Image.Dir != "" {
		return c.Image.Dir
	}
	return filepath.Join(c.DataDir, "images")
}

// BaseURL returns the public base URL of the APIs, without a trailing
// slash.
func (c *Config) BaseURL() string { return publicURL(c.API.PublicURL, c.API.Listen) }

// S3URL is the base URL clients reach the S3 API at.
func (c *Config) S3URL() string {
	return publicURL(c.ObjectStore.S3PublicURL, c.ObjectStore.S3Listen)
}

// publicURL is configured if set, else http:// and listen, with this
// host's name for a wildcard address.
func publicURL(configured, listen string) string {
	if configured != "" {
		return strings.TrimRight(configured, "/")
	}
	host, port, _ := strings.Cut(listen, ":")
	if host == "" || host == "0.0.0.0" || host == "::" {
		host, _ = os.Hostname()
	}
	return "http://" + host + ":" + port
}

// Defaults renders the annotated default configuration file.
func Defaults() string {
	c := Default()
	var b strings.Builder
	b.WriteString("# trustack configuration. Each option shows its default, commented out.\n")
	section := ""
	for _, o := range c.options() {
		if o.section != section {
			section = o.section
			fmt.Fprintf(&b, "\n[%s]\n", section)
		}
		b.WriteString("\n")
		for _, line := range wrap(o.help, 76) {
			fmt.Fprintf(&b, "# %s\n", line)
		}
		fmt.Fprintf(&b, "#%s = %s\n", o.name, o.value)
	}
	return b.String()
}

func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(lines, line)
}

// Option value kinds.

type (
	str     string
	boolean bool
	choice  string
	integer int
	i64     int64
	float   float64
	seconds time.Duration
	list    []string
)

func (s *str) set(v string) error { *s = str(v); return nil }

func (b *boolean) set(v string) error {
	switch strings.ToLower(v) {
	case "yes", "true", "on", "1":
		*b = true
	case "no", "false", "off", "0":
		*b = false
	default:
		return fmt.Errorf("want yes or no, got %q", v)
	}
	return nil
}

func (b *boolean) String() string {
	if *b {
		return "yes"
	}
	return "no"
}

func (s *str) String() string        { return string(*s) }
func (s *choice) set(v string) error { *s = choice(strings.ToLower(v)); return nil }
func (s *choice) String() string     { return string(*s) }

func (n *integer) set(v string) error {
	i, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("want an integer, got %q", v)
	}
	*n = integer(i)
	return nil
}
func (n *integer) String() string { return strconv.Itoa(int(*n)) }

func (n *i64) set(v string) error {
	i, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return fmt.Errorf("want an integer, got %q", v)
	}
	*n = i64(i)
	return nil
}
func (n *i64) String() string { return strconv.FormatInt(int64(*n), 10) }

func (f *float) set(v string) error {
	x, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return fmt.Errorf("want a number, got %q", v)
	}
	*f = float(x)
	return nil
}
func (f *float) String() string { return strconv.FormatFloat(float64(*f), 'f', -1, 64) }

func (l *list) set(v string) error {
	*l = nil
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}
func (l *list) String() string { return strings.Join(*l, ", ") }

func (d *seconds) set(v string) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 {
		return fmt.Errorf("want a number of seconds, got %q", v)
	}
	*d = seconds(f * float64(time.Second))
	return nil
}
func (d *seconds) String() string {
	return strconv.FormatFloat(time.Duration(*d).Seconds(), 'f', -1, 64)
}
