package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/galeproject/gale/glider"
)

func newGliderCmd() *cobra.Command {
	g := &cobra.Command{Use: "glider", Short: "Glider, the ephemeral computational store"}
	var c glider.RoleConfig
	serve := &cobra.Command{
		Use:   "serve --role meta|storage|active [--listen ADDR] [--meta ADDR] --secret S",
		Short: "Serve one Glider server (a metadata, DRAM storage or active server)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch c.Role {
			case glider.RoleMeta, glider.RoleStorage, glider.RoleActive:
			case "":
				return usageError{fmt.Errorf("glider serve: --role is required: %s, %s or %s", glider.RoleMeta, glider.RoleStorage, glider.RoleActive)}
			default:
				return usageError{fmt.Errorf("glider serve: unknown role %q: want %s, %s or %s", c.Role, glider.RoleMeta, glider.RoleStorage, glider.RoleActive)}
			}
			if c.Secret == "" {
				c.Secret = os.Getenv("GALE_GLIDER_SECRET")
			}
			if c.Secret == "" {
				return usageError{errors.New("glider serve: a cluster secret is required: --secret or GALE_GLIDER_SECRET")}
			}
			if c.Role != glider.RoleMeta && c.Meta == "" {
				return usageError{fmt.Errorf("glider serve: --role %s needs --meta ADDR of the metadata server", c.Role)}
			}
			c.Started = func(addr string) {
				fmt.Fprintf(cmd.OutOrStdout(), "glider %s server listening on %s\n", c.Role, addr)
			}
			err := glider.ServeRole(cmd.Context(), c)
			if errors.Is(err, cmd.Context().Err()) {
				return nil // interrupted: a normal stop
			}
			return err
		},
	}
	fl := serve.Flags()
	fl.StringVar(&c.Role, "role", "", "meta, storage or active")
	fl.StringVar(&c.Addr, "listen", "127.0.0.1:0", "address to listen on")
	fl.StringVar(&c.Advertise, "advertise", "", "address clients use to reach this server, if not --listen")
	fl.StringVar(&c.Meta, "meta", "", "metadata server address (storage and active roles)")
	fl.StringVar(&c.Secret, "secret", "", "cluster secret, at least 16 bytes (or GALE_GLIDER_SECRET)")
	fl.StringVar(&c.Class, "class", "", "storage class served (default: DRAM for storage, the active class for active)")
	fl.Int64Var(&c.Capacity, "capacity", 0, "storage server capacity in bytes (default: the server's)")
	fl.IntVar(&c.Slots, "slots", 0, "action slots of an active server (default: the server's)")
	g.AddCommand(serve)
	return g
}
