package lvm

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/trustack/trustack/agent"
	"github.com/trustack/trustack/internal/stats"
	"github.com/trustack/trustack/internal/testimage"
	"github.com/trustack/trustack/volume/nbd"
	"github.com/trustack/trustack/wire"
)

// serveVolumes, on the storage host guest's test program's command line
// (BenchmarkCreateAndAttach), has TestServeVolumesOnRequest run.
var serveVolumes = flag.Bool("serve-volumes", false, "make and export volumes on request, over NBD to the holder of -nbd-key (TestServeVolumesOnRequest, in the storage host guest)")

const (
	// controlLine is what TestServeVolumesOnRequest prints, followed by
	// the port of its control server on guestAddress.
	controlLine = "trustack-lvm-control: listening on port "
	// watchingLine and volumeLine are what the test guest of
	// BenchmarkCreateAndAttach prints (benchGuestScript): once it
	// watches for volumes, and the serial of each volume it has.
	watchingLine = "trustack-guest script: watching for volumes"
	volumeLine   = "trustack-guest script: volume "
	// guestVolumes is how many volumes a guest of the QEMU driver
	// takes: at vdc to vdr.
	guestVolumes = 16
)

// TestServeVolumesOnRequest is the storage host's side of
// BenchmarkCreateAndAttach, which runs it in the storage host guest with
// -serve-volumes: a control server on guestAddress, whose port it
// prints after controlLine, that answers POST /volumes/{id} by making
// the volume id, of 1 GiB, and exporting it to the holder of -nbd-key
// (madeVolume), and POST /done by ending the test, which stops the
// exports and removes the volumes.
func TestServeVolumesOnRequest(t *testing.T) {
	if !inGuest() || !*serveVolumes {
		t.Skip("the storage host's side of BenchmarkCreateAndAttach, which runs it in the storage host guest")
	}
	key := keyFlag(t)
	b := open(t)
	exporter, err := nbd.NewExporter(t.TempDir(), guestAddress)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		names, err := exporter.Exports()
		for _, name := range names {
			err = errors.Join(err, exporter.Unexport(context.Background(), name))
		}
		if err != nil {
			t.Error(err)
		}
	})

	done := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /volumes/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, volume, err := makeAndExport(r.Context(), b, exporter, r.PathValue("id"), key)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(volume)
	})
	end := sync.OnceFunc(func() { close(done) })
	mux.HandleFunc("POST /done", func(http.ResponseWriter, *http.Request) { end() })
	l, err := net.Listen("tcp", guestAddress+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	fmt.Printf("%s%d\n", controlLine, l.Addr().(*net.TCPAddr).Port)
	<-done
	// Shutdown waits for the answer to POST /done.
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Error(err)
	}
}

// benchGuestScript is the user data of BenchmarkCreateAndAttach's test
// guest: it prints watchingLine, then the serials of the volumes it has
// whenever their number changes, with shell builtins but for sleep, so
// as to take little of the guest's emulated CPU. (A serial in sysfs ends
// with no newline, on which read fails having read it.)
const benchGuestScript = `#!/bin/sh
echo watching for volumes
n=0
while :; do
  set -- /sys/block/vd*
  if [ $# -ne $n ]; then
    n=$#
    for d; do read -r s <"$d/serial"; [ -n "$s" ] && echo "volume $s"; done
  fi
  sleep 1
done
`

// BenchmarkCreateAndAttach measures the time from a request for a volume
// of 1 GiB on a storage host of this backend to its being plugged into a
// running guest on another host, over NBD with TLS: the storage host
// makes the logical volume and exports it (TestServeVolumesOnRequest, in
// the storage host guest, asked over a port that its user networking
// forwards), the port of the export is forwarded in turn, and the QEMU
// hypervisor driver hot-plugs the volume into the test guest, which
// runs from before the first iteration and takes one more volume each
// time, at vdc, vdd, ... (at most guestVolumes). It reports the median
// and the 99th percentile of the whole, in ms ("ms-median", "ms-p99"),
// and of its parts: making the volume and exporting it, as timed by
// the storage host ("create-ms-...", "export-ms-..."), and AttachVolume
// ("attach-ms-..."); what remains is the control request and the port
// forward. The 99th percentile is by nearest rank: of fewer than 100
// samples, the slowest.
//
// Both guests run under TCG, on this machine's cores: KVM here is no
// help (docs/architecture.md). So LVM's commands and qemu-storage-daemon
// run emulated in the storage host, which inflates the create and
// export parts many times over what a storage host's own kernel would take; the
// test guest's side of the hot-plug is emulated as well. Run it with
// -benchtime 10x.
func BenchmarkCreateAndAttach(b *testing.B) {
	kernel, initrd := storageHostGuest(b)
	key := nbd.NewKey("lvm-bench")

	ctx, cancel := context.WithTimeout(b.Context(), 20*time.Minute)
	defer cancel()
	storage := startStorageHost(b, kernel, initrd,
		"-test.v", "-test.run=^TestServeVolumesOnRequest$", "-test.timeout=20m",
		"-serve-volumes", "-nbd-key="+key.Identity+":"+key.Secret)
	guest := testimage.Spawn(b, "../..", 256, benchGuestScript)
	failf := withConsoles(b, storage, guest)

	guestPort, err := storage.waitForPort(ctx, controlLine)
	if err != nil {
		failf("the storage host did not serve its control server: %v", err)
	}
	hostPort, err := forward(ctx, storage.dir, guestPort)
	if err != nil {
		failf("forward a port to the control server: %v", err)
	}
	control := fmt.Sprintf("http://127.0.0.1:%d", hostPort)
	if _, err := guest.Await(ctx, watchingLine); err != nil {
		failf("the test guest did not start its script: %v", err)
	}

	var took, made, exported, attached []time.Duration
	var volumes []string
	for b.Loop() {
		i := len(volumes)
		if i == guestVolumes {
			b.Fatalf("a guest takes %d volumes (vdc to vdr): run at most -benchtime %dx", guestVolumes, guestVolumes)
		}
		id := uuid.NewString()
		start := time.Now()
		volume, err := requestVolume(ctx, control, id)
		if err != nil {
			failf("volume %d: %v", i, err)
		}
		hostPort, err := forward(ctx, storage.dir, volume.Port)
		if err != nil {
			failf("forward a port to the export of volume %d: %v", i, err)
		}
		disk := agent.Disk{VolumeID: id, Device: fmt.Sprintf("vd%c", 'c'+i), NBD: &wire.NBDExport{Host: "127.0.0.1", Port: hostPort, Name: id,
			Key: wire.PSK{Identity: key.Identity, Secret: key.Secret}}}
		attaching := time.Now()
		if err := guest.Driver.AttachVolume(ctx, guest.ID, disk); err != nil {
			failf("AttachVolume of volume %d, served at 127.0.0.1:%d: %v", i, hostPort, err)
		}
		end := time.Now()
		took, attached = append(took, end.Sub(start)), append(attached, end.Sub(attaching))
		made, exported = append(made, volume.Made), append(exported, volume.Exported)
		volumes = append(volumes, id)
	}

	// The guest has every volume, as its kernel saw them plugged in.
	var serials []string
	for _, id := range volumes {
		serials = append(serials, volumeLine+id[:20])
	}
	seen, cancelSeen := context.WithTimeout(ctx, time.Minute)
	defer cancelSeen()
	if _, err := guest.Await(seen, serials...); err != nil {
		failf("the test guest does not have the volumes: %v", err)
	}
	// The test guest goes while its volumes are served, as a server goes
	// before its volumes are detached.
	if err := guest.Driver.Destroy(ctx, guest.ID); err != nil {
		failf("destroy the test guest: %v", err)
	}
	resp, err := http.Post(control+"/done", "", nil)
	if err != nil {
		failf("end the storage host's side: %v", err)
	}
	resp.Body.Close()
	select {
	case <-storage.exited:
	case <-ctx.Done():
		failf("the storage host guest did not end")
	}
	if !strings.Contains(storage.console.String(), guestPass) {
		failf("the storage host's side failed")
	}

	for _, m := range []struct {
		unit    string // the start of its metrics' units
		what    string
		samples []time.Duration
	}{
		{"", "request to attached", took},
		{"create-", "made (lvcreate), as the storage host timed it", made},
		{"export-", "exported (qemu-storage-daemon started), as the storage host timed it", exported},
		{"attach-", "AttachVolume", attached},
	} {
		// In order, before median sorts them: the first may stand out.
		each := make([]float64, len(m.samples))
		for i, d := range m.samples {
			each[i] = ms(d)
		}
		b.Logf("%s, in ms: %.0f", m.what, each)
		b.ReportMetric(ms(stats.Median(m.samples)), m.unit+"ms-median")
		b.ReportMetric(ms(stats.Percentile(m.samples, 0.99)), m.unit+"ms-p99")
	}
}

// requestVolume asks the control server of TestServeVolumesOnRequest, at
// the URL control, for the volume id.
func requestVolume(ctx context.Context, control, id string) (madeVolume, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", control+"/volumes/"+id, nil)
	if err != nil {
		return madeVolume{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return madeVolume{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		said, _ := io.ReadAll(resp.Body)
		return madeVolume{}, fmt.Errorf("the storage host: %s: %s", resp.Status, strings.TrimSpace(string(said)))
	}
	var v madeVolume
	return v, json.NewDecoder(resp.Body).Decode(&v)
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
