package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

// galeCommand is the main package of the gale command, which deploy
// commands build by default.
const galeCommand = "github.com/galeproject/gale/cmd/gale"

// slimTags are the build tags a deploy command builds with by default: a
// slim build linking only cloud's backend (see gale.SlimTag).
func slimTags(cloud string) string { return gale.SlimTag + ",gale_" + cloud }

// tagsUsage documents the deploy commands' --tags flag.
const tagsUsage = "build tags of the function's binary when this command builds it: the default links only this cloud's backend; add gale_aws, gale_gcp, gale_azure or gale_ibm if the workers read another cloud's URLs (s3://, gs://, azblob://, cos://), or pass --tags '' for a full build"

// functionBinary is the binary a deploy command packages: the file
// --binary names, else a build of --main (or of the gale command) for
// linux/goarch with the build tags tags.
type functionBinary struct {
	binary, main, tags, goarch string
}

// load returns the binary's bytes, building it if need be. The gale
// command is built from the module in the current directory when that
// module has it; elsewhere (an installed gale run outside Gale's module)
// this very binary is deployed as it is, when it runs on linux/goarch,
// and stderr says so.
func (f functionBinary) load(ctx context.Context, stderr io.Writer) ([]byte, error) {
	if f.binary != "" {
		b, err := os.ReadFile(f.binary)
		if err != nil {
			return nil, fmt.Errorf("reading the function's binary: %w", err)
		}
		return b, nil
	}
	pkg := first(f.main, galeCommand)
	goCmd, lookErr := goCommand()
	if f.main == "" && (lookErr != nil || exec.CommandContext(ctx, goCmd, "list", "-tags", f.tags, pkg).Run() != nil) {
		if runtime.GOOS != "linux" || runtime.GOARCH != f.goarch {
			return nil, fmt.Errorf("no module here has %s to build for linux/%s, and this gale binary is for %s/%s: run gale deploy in Gale's module, or build the function with GOOS=linux GOARCH=%s CGO_ENABLED=0 go build -tags %s -ldflags='-s -w' and pass it with --binary",
				pkg, f.goarch, runtime.GOOS, runtime.GOARCH, f.goarch, f.tags)
		}
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		b, err := os.ReadFile(exe)
		if err != nil {
			return nil, fmt.Errorf("reading this gale binary to deploy it: %w", err)
		}
		fmt.Fprintf(stderr, "no module here has %s to build: deploying this gale binary as it is (%s, %.1f MiB); a slim build is smaller (go build -tags %s -ldflags='-s -w' ./cmd/gale in Gale's module, then --binary)\n",
			pkg, exe, float64(len(b))/(1<<20), f.tags)
		return b, nil
	}
	if lookErr != nil {
		return nil, lookErr
	}
	return crossCompile(ctx, goCmd, pkg, f.goarch, f.tags, stderr)
}

// goCommand finds the go command: on PATH, else this toolchain's.
func goCommand() (string, error) {
	goCmd, err := exec.LookPath("go")
	if err == nil {
		return goCmd, nil
	}
	goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, serr := os.Stat(goCmd); serr != nil {
		return "", fmt.Errorf("building the function needs the go command (not found: %v); or pass a built Linux binary with --binary", err)
	}
	return goCmd, nil
}

// crossCompile builds pkg for linux/goarch, statically (CGO_ENABLED=0),
// stripped, with the build tags tags (comma-separated; "" for none), with
// goCmd, in the current directory's module.
func crossCompile(ctx context.Context, goCmd, pkg, goarch, tags string, stderr io.Writer) ([]byte, error) {
	dir, err := os.MkdirTemp("", "gale-deploy-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "function")
	args := []string{"build", "-trimpath", "-ldflags=-s -w", "-o", out}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	build := exec.CommandContext(ctx, goCmd, append(args, pkg)...)
	build.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+goarch, "CGO_ENABLED=0")
	build.Stdout, build.Stderr = stderr, stderr
	fmt.Fprintf(stderr, "building %s for linux/%s (tags %q)\n", pkg, goarch, tags)
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("go build %s for linux/%s: %w (run gale deploy inside a module that has %s, or pass --binary)", pkg, goarch, err, pkg)
	}
	return os.ReadFile(out)
}
