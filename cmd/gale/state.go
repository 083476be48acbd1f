package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/galeproject/gale/examples/kmeans"
	"github.com/galeproject/gale/examples/logreg"
	"github.com/galeproject/gale/examples/mandelbrot"
	"github.com/galeproject/gale/examples/pi"
	"github.com/galeproject/gale/examples/santa"
	"github.com/galeproject/gale/state"
	"github.com/galeproject/gale/state/threads"
)

// threadFlags choose where cloud threads run.
type threadFlags struct{ backend string }

func (f *threadFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.backend, "backend", "local", "where cloud threads run: local (goroutines) or process (worker processes)")
}

// start returns the executor and shared-object client the example runs
// with: nil for local (the example embeds its own), or an embedded DSO
// server plus worker processes of this binary for process. The returned
// stop function releases them.
func (f *threadFlags) start(cmd *cobra.Command, slots int) (*threads.Executor, *state.Client, func() error, error) {
	switch f.backend {
	case "local":
		return nil, nil, func() error { return nil }, nil
	case "process":
	default:
		return nil, nil, nil, usageError{fmt.Errorf("unknown backend %q; available: local, process", f.backend)}
	}
	pb, err := newProcessBackend(slots, cmd.ErrOrStderr())
	if err != nil {
		return nil, nil, nil, err
	}
	l, err := threads.StartLocal(cmd.Context(), threads.LocalConfig{Registry: threadFunctions(), Backend: pb, Concurrency: slots})
	if err != nil {
		pb.Close()
		return nil, nil, nil, err
	}
	return l.Executor, l.DSO, func() error { return errors.Join(l.Close(), pb.Close()) }, nil
}

// threadFunctions registers every sample job's cloud-thread functions; the
// driver and the `gale worker` processes build the same registry.
func threadFunctions() *threads.Registry {
	reg := threads.NewRegistry()
	pi.Register(reg)
	mandelbrot.Register(reg)
	santa.Register(reg)
	return reg
}

func newRunPiCmd() *cobra.Command {
	var cfg pi.Config
	var tf threadFlags
	cmd := &cobra.Command{
		Use:   "pi [--workers N] [--samples M]",
		Short: "Estimate π with Monte Carlo cloud threads sharing an AtomicLong",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			exec, dso, stop, err := tf.start(cmd, cfg.Workers)
			if err != nil {
				return err
			}
			cfg.Executor, cfg.DSO = exec, dso
			start := time.Now()
			res, err := pi.Run(cmd.Context(), cfg)
			if serr := stop(); err == nil {
				err = serr
			}
			if err != nil {
				return err
			}
			d := time.Since(start)
			fmt.Fprintf(cmd.OutOrStdout(), "π ≈ %.6f (error %.2e) from %d points (%d inside) by %d cloud threads in %s, %.1f Mpoints/s\n",
				res.Estimate, math.Abs(res.Estimate-math.Pi), res.Total, res.Inside, res.Workers,
				d.Round(time.Millisecond), float64(res.Total)/1e6/d.Seconds())
			return nil
		},
	}
	cmd.Flags().IntVar(&cfg.Workers, "workers", 4, "cloud threads")
	cmd.Flags().Int64Var(&cfg.SamplesPerWorker, "samples", 10_000_000, "points per thread")
	cmd.Flags().Uint64Var(&cfg.Seed, "seed", 1, "random seed")
	tf.register(cmd)
	return cmd
}

func newRunMandelbrotCmd() *cobra.Command {
	var cfg mandelbrot.Config
	var tf threadFlags
	cmd := &cobra.Command{
		Use:   "mandelbrot --output FILE.png [--width W --height H --workers N]",
		Short: "Render the Mandelbrot set row-parallel with cloud threads into a shared image object",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Output == "" {
				return usageError{errors.New("mandelbrot: --output FILE.png is required")}
			}
			exec, dso, stop, err := tf.start(cmd, cfg.Workers)
			if err != nil {
				return err
			}
			cfg.Executor, cfg.DSO = exec, dso
			start := time.Now()
			res, err := mandelbrot.Run(cmd.Context(), cfg)
			if serr := stop(); err == nil {
				err = serr
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d×%d, %d pixels inside the set) in %s\n", res.Output,
				res.Width, res.Height, res.Inside, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	cmd.Flags().StringVar(&cfg.Output, "output", "", "PNG file to write (atomically)")
	cmd.Flags().IntVar(&cfg.Width, "width", 1024, "image width in pixels")
	cmd.Flags().IntVar(&cfg.Height, "height", 768, "image height in pixels")
	cmd.Flags().IntVar(&cfg.MaxIter, "max-iter", 500, "iterations per pixel at most")
	cmd.Flags().IntVar(&cfg.Workers, "workers", 4, "cloud threads")
	tf.register(cmd)
	return cmd
}

func newRunSantaCmd() *cobra.Command {
	var cfg santa.Config
	var tf threadFlags
	cmd := &cobra.Command{
		Use:   "santa [--deliveries N]",
		Short: "Run the Santa Claus problem with 10 elves and 9 reindeer as cloud threads, checking its invariants",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The 10 elves, 9 reindeer and Santa all run at once.
			exec, dso, stop, err := tf.start(cmd, 20)
			if err != nil {
				return err
			}
			cfg.Executor, cfg.DSO = exec, dso
			start := time.Now()
			res, err := santa.Run(cmd.Context(), cfg)
			if serr := stop(); err == nil {
				err = serr
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d deliveries and %d elf groups of three in %s; %d events checked: "+
				"reindeer first, groups of exactly three, no epoch lost\n",
				res.Deliveries, res.Groups, time.Since(start).Round(time.Millisecond), len(res.Events))
			return nil
		},
	}
	cmd.Flags().IntVar(&cfg.Deliveries, "deliveries", 15, "toy deliveries (trips of the nine reindeer)")
	cmd.Flags().IntVar(&cfg.ElfVisits, "elf-visits", 3, "times an elf asks for help, on average (10×visits must be a multiple of 3)")
	cmd.Flags().DurationVar(&cfg.MaxPause, "max-pause", 2*time.Millisecond, "longest vacation or work pause")
	tf.register(cmd)
	return cmd
}

func newDSOCmd() *cobra.Command {
	dso := &cobra.Command{Use: "dso", Short: "Distributed shared objects"}
	var listen, token, dataDir, advertise string
	var join []string
	var rf, partitions int
	var cluster bool
	var failTimeout time.Duration
	serve := &cobra.Command{
		Use:   "serve --listen ADDR --token TOKEN [--data-dir DIR] [--cluster [--rf N] | --join ADDR]",
		Short: "Serve shared objects (standalone, or as a member of a replicated cluster)",
		Long: "Without --cluster or --join the server is standalone: clients list every server and place objects " +
			"by consistent hashing. --cluster starts a replicated cluster (persistent objects kept by --rf members " +
			"with raft); --join ADDR adds this server to the running cluster ADDR belongs to. Clients of a cluster " +
			"need one member's address and learn the others.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if token == "" {
				token = os.Getenv("GALE_DSO_TOKEN")
			}
			if token == "" {
				return usageError{errors.New("dso serve: a shared secret is required: --token or GALE_DSO_TOKEN")}
			}
			errOut := cmd.ErrOrStderr()
			// The sample jobs' object types, as a worker binary links its
			// functions.
			reg := state.NewRegistry()
			kmeans.RegisterTypes(reg)
			state.RegisterType[logreg.Weights](reg, logreg.TypeWeights)
			cfg := state.ServerConfig{Addr: listen, Token: token, DataDir: dataDir, Registry: reg,
				Logf: func(format string, args ...any) { fmt.Fprintf(errOut, format+"\n", args...) }}
			if cluster || len(join) > 0 {
				cfg.Cluster = &state.ClusterConfig{Join: join, ReplicationFactor: rf, Partitions: partitions,
					Advertise: advertise, FailTimeout: failTimeout}
			}
			srv, err := state.NewServer(cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "serving shared objects on %s\n", srv.Addr())
			err = srv.Serve(cmd.Context())
			if cerr := srv.Close(); err == nil {
				err = cerr
			}
			if errors.Is(err, cmd.Context().Err()) {
				return nil // interrupted: a normal stop
			}
			return err
		},
	}
	serve.Flags().StringVar(&listen, "listen", "127.0.0.1:7450", "TCP address to listen on")
	serve.Flags().StringVar(&token, "token", "", "shared secret clients must present (or GALE_DSO_TOKEN)")
	serve.Flags().StringVar(&dataDir, "data-dir", "", "where persistent objects live (snapshot + log)")
	serve.Flags().BoolVar(&cluster, "cluster", false, "start a new replicated cluster with this server as its first member")
	serve.Flags().StringSliceVar(&join, "join", nil, "join the cluster of this member (repeatable)")
	serve.Flags().IntVar(&rf, "rf", 2, "replication factor of persistent objects (a new cluster)")
	serve.Flags().IntVar(&partitions, "partitions", 64, "replica groups objects are hashed into (a new cluster)")
	serve.Flags().StringVar(&advertise, "advertise", "", "address other members and clients reach this server at (default: the listening address)")
	serve.Flags().DurationVar(&failTimeout, "fail-timeout", time.Second, "a member unheard for this long is removed and its replicas move")
	dso.AddCommand(serve)

	var server string
	dialCluster := func(cmd *cobra.Command) (*state.Client, error) {
		if token == "" {
			token = os.Getenv("GALE_DSO_TOKEN")
		}
		if server == "" || token == "" {
			return nil, usageError{errors.New("--server ADDR and --token (or GALE_DSO_TOKEN) are required")}
		}
		c, err := state.Dial(cmd.Context(), state.ClientConfig{Servers: []string{server}, Token: token})
		if err != nil {
			return nil, err
		}
		if c.View() == nil {
			_ = c.Close()
			return nil, fmt.Errorf("%s is a standalone DSO server, not a cluster member", server)
		}
		return c, nil
	}
	members := &cobra.Command{
		Use:   "members --server ADDR --token TOKEN",
		Short: "List the members of a DSO cluster and the partitions each holds",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := dialCluster(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			v := c.View()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%d members, replication factor %d, %d partitions\n", len(v.Members), v.ReplicationFactor, v.Partitions)
			fmt.Fprintf(out, "%-6s %-24s %8s %6s\n", "ID", "ADDRESS", "REPLICAS", "LEADS")
			for _, m := range c.Members() {
				fmt.Fprintf(out, "%-6d %-24s %8d %6d\n", m.ID, m.Addr, m.Replicas, m.Leads)
			}
			return nil
		},
	}
	members.Flags().StringVar(&server, "server", "", "address of any member")
	members.Flags().StringVar(&token, "token", "", "the cluster's token (or GALE_DSO_TOKEN)")
	dso.AddCommand(members)

	var leaveID uint64
	leave := &cobra.Command{
		Use:   "leave --server ADDR --token TOKEN [--id N]",
		Short: "Remove a member from a DSO cluster (default: the one at --server); its replicas move to the others",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := dialCluster(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			id := leaveID
			if id == 0 {
				for _, m := range c.Members() {
					if m.Addr == server {
						id = m.ID
					}
				}
				if id == 0 {
					return fmt.Errorf("%s is not a member address; name the member with --id (gale dso members lists them)", server)
				}
			}
			if err := c.Leave(cmd.Context(), id); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "member %d removed; its replicas are moving to the other members\n", id)
			return nil
		},
	}
	leave.Flags().StringVar(&server, "server", "", "address of a member (the one to remove unless --id)")
	leave.Flags().StringVar(&token, "token", "", "the cluster's token (or GALE_DSO_TOKEN)")
	leave.Flags().Uint64Var(&leaveID, "id", 0, "id of the member to remove")
	dso.AddCommand(leave)

	var repairDir string
	repair := &cobra.Command{
		Use:   "repair --data-dir DIR",
		Short: "Make a damaged DSO data directory usable: keep every log record before the damage, set the rest aside",
		Long: "A DSO server refuses to start on a data directory whose log fails a checksum or sequence check, " +
			"naming the file and byte offset. repair keeps every record before the damage and moves the bytes " +
			"from the damage on into .damaged files in the directory (nothing is deleted). Stop the server first.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if repairDir == "" {
				return usageError{errors.New("dso repair: --data-dir DIR is required")}
			}
			rep, err := state.RepairDataDir(repairDir)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if rep.Damaged == "" {
				fmt.Fprintf(out, "%s is intact (%d log records after the snapshot); nothing to repair\n", repairDir, rep.Kept)
				return nil
			}
			fmt.Fprintf(out, "found: %s\nkept %d log records after the snapshot; the rest is in %s\n",
				rep.Damaged, rep.Kept, strings.Join(rep.SetAside, ", "))
			return nil
		},
	}
	repair.Flags().StringVar(&repairDir, "data-dir", "", "the data directory to repair")
	dso.AddCommand(repair)
	return dso
}
