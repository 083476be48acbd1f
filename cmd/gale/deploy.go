package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/galeproject/gale"
)

// newDeployCmd is `gale deploy`: create or update the cloud function that
// runs Gale's workers. Each cloud backend adds its provider as a
// subcommand named after the backend (newDeploy<Name>Cmd in its
// backend_<name>.go, plus one AddCommand line here), so both
// `gale deploy aws` and `gale deploy --backend aws` reach it.
func newDeployCmd() *cobra.Command {
	deploy := &cobra.Command{
		Use:   "deploy (--backend NAME | NAME) [flags]",
		Short: "Create or update the cloud function that runs Gale's workers",
		Long: `Packages a Linux build of the gale binary (or of your own Gale program) the
way the backend's platform expects and creates or updates the function
through the vendor's SDK, with the settings of the backend's section of
the config file. Run gale deploy NAME --help for a backend's flags.`,
		// Flags belong to the backends' subcommands; --backend is picked
		// out here and the rest handed to the subcommand it names.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, rest, help := backendArg(args)
			if name == "" && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
				// gale deploy NAME for a NAME with no subcommand here.
				name, rest = rest[0], rest[1:]
			}
			if name == "" {
				if len(deployable(cmd)) == 0 {
					return usageError{fmt.Errorf("gale deploy: this binary links no cloud backend (it was built with -tags %s): rebuild it without that tag, or add gale_aws, gale_gcp, gale_azure or gale_ibm", gale.SlimTag)}
				}
				if help {
					return cmd.Help()
				}
				return usageError{fmt.Errorf("gale deploy: name a backend: --backend %s", strings.Join(deployable(cmd), "|"))}
			}
			for _, sub := range cmd.Commands() {
				if sub.Name() == name {
					if help {
						return sub.Help()
					}
					sub.SetContext(cmd.Context())
					if err := sub.ParseFlags(rest); err != nil {
						return usageError{err}
					}
					if sub.Args != nil {
						if err := sub.Args(sub, sub.Flags().Args()); err != nil {
							return usageError{err}
						}
					}
					return sub.RunE(sub, sub.Flags().Args())
				}
			}
			if err := gale.CloudNotLinked(name); err != nil {
				return usageError{err}
			}
			return usageError{fmt.Errorf("gale deploy: backend %q has no deploy step; deployable: %s", name, strings.Join(deployable(cmd), ", "))}
		},
	}
	for _, c := range deployCmds {
		deploy.AddCommand(c())
	}
	return deploy
}

// deployCmds are the backends' deploy subcommands, registered by init
// functions of the backend_<name>.go files (which a slim build may leave
// out: see gale.SlimTag).
var deployCmds []func() *cobra.Command

// registerDeploy adds a backend's deploy subcommand.
func registerDeploy(c func() *cobra.Command) { deployCmds = append(deployCmds, c) }

// first returns the first non-zero value.
func first[T comparable](vs ...T) T {
	var zero T
	for _, v := range vs {
		if v != zero {
			return v
		}
	}
	return zero
}

// backendArg picks --backend NAME (or --backend=NAME) out of args.
func backendArg(args []string) (name string, rest []string, help bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--backend" && i+1 < len(args):
			name = args[i+1]
			i++
		case strings.HasPrefix(a, "--backend="):
			name = strings.TrimPrefix(a, "--backend=")
		case a == "-h" || a == "--help":
			help = true
		default:
			rest = append(rest, a)
		}
	}
	return name, rest, help
}

func deployable(cmd *cobra.Command) []string {
	var names []string
	for _, sub := range cmd.Commands() {
		if sub.Name() != "help" && sub.Name() != "completion" {
			names = append(names, sub.Name())
		}
	}
	sort.Strings(names)
	return names
}
