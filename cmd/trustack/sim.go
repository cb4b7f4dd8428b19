package main

import (
	"encoding/json"
	"os"

	"github.com/spf13/cobra"

	"github.com/trustack/trustack"
	"github.com/trustack/trustack/sim"
)

func simCommand() *cobra.Command {
	var cfg sim.Config
	var format, cpuProfile string
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Simulate ACaaS placement on a generated cluster, in memory",
		Long: `sim generates a cluster of --hosts hosts in --domains physical domains and a
workload of --requests servers, places them with the scheduler over an
in-memory store from --workers concurrent workers, and reports placements per
second, latency, failures, utilisation and the violations a check of the final
state finds (there should be none). Run it with GOMAXPROCS=1 to measure one
core.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			if format != "table" && format != "json" {
				return trustack.Errorf(trustack.EINVALID, "unknown format %q: want table or json", format)
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer func() {
					if cerr := f.Close(); err == nil {
						err = cerr
					}
				}()
				cfg.CPUProfile = f
			}
			rep, err := sim.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return rep.WriteText(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Hosts, "hosts", 1000, "compute hosts")
	f.IntVar(&cfg.Domains, "domains", 0, "physical domains (default one per 100 hosts)")
	f.IntVar(&cfg.Locations, "locations", 0, "locations (default one per 3 domains, 1 to 8)")
	f.IntVar(&cfg.Requests, "requests", 0, "servers to place (default 2 per host)")
	f.IntVar(&cfg.Projects, "projects", 0, "projects the servers belong to (default one per 50 requests)")
	f.IntVar(&cfg.Workers, "workers", 1, "concurrent placements")
	f.StringVar(&cfg.Mix, "mix", sim.MixPlain, "what requests require: plain, requirements (location and isolation) or random (any)")
	f.Uint64Var(&cfg.Seed, "seed", 1, "seed of the cluster, the workload and the scheduler")
	f.StringVar(&cfg.Driver, "driver", "acaas", "scheduler driver: acaas, filter, simple or chance")
	f.StringVar(&format, "format", "table", "output format: table or json")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the placements to this file")
	return cmd
}
