package gale

import (
	"context"
	"fmt"

	"github.com/galeproject/gale/engine"
	"github.com/galeproject/gale/glider"
	"github.com/galeproject/gale/internal/kernel"
)

// Shuffle strategies.
const (
	// DataShipping writes each map task's partitions to one object in
	// object storage; reduce tasks read their ranges back (the default).
	DataShipping = "data-shipping"
	// GliderShuffle streams lifted combines into Glider merge actions and
	// sorts into Glider sort actions, which combine or sort the data as it
	// arrives; reduce tasks read the actions' results.
	GliderShuffle = "glider"
)

// ShuffleStrategy selects how data crosses shuffles: DataShipping (the
// default) or GliderShuffle. With GliderShuffle, Run starts an embedded
// Glider cluster for the job (its active servers run in this process, with
// the job's combiners registered) and removes everything the job put
// there when it ends. Shuffles Glider cannot take (GroupByKey, unlifted
// combines, Iterate) ship data either way; the plan and the report name
// each shuffle's strategy.
func ShuffleStrategy(s string) RunOption { return func(c *runConfig) { c.shuffle = s } }

// startGlider starts the embedded Glider cluster of a job whose plan has
// glider shuffles, with a combine function for each merge action.
func startGlider(ctx context.Context, p *Pipeline, job *engine.Job) (stop func() error, err error) {
	reg := glider.DefaultRegistry()
	combiners := map[string]string{}
	for _, sh := range job.Plan.Shuffles {
		if !sh.Glider || sh.Range {
			continue
		}
		if _, done := combiners[sh.Kernel]; done {
			continue
		}
		m, err := kernel.Lookup[kernel.Merger](p.reg, sh.Kernel)
		if err != nil {
			return nil, fmt.Errorf("gale: %s cannot merge in Glider: %w", job.Plan.Logical.Nodes[sh.Node].Label, err)
		}
		reg.RegisterCombiner(sh.Kernel, m.MergeEncoded)
		combiners[sh.Kernel] = sh.Kernel
	}
	cl, err := glider.NewCluster(glider.ClusterConfig{Registry: reg})
	if err != nil {
		return nil, err
	}
	if err := cl.Start(ctx); err != nil {
		return nil, fmt.Errorf("gale: starting the embedded Glider cluster: %w", err)
	}
	ns := "gale-" + job.ID
	job.Glider = &engine.GliderConfig{Meta: cl.MetaAddr(), Namespace: ns, Token: cl.Token(ns), Combiners: combiners}
	return cl.Close, nil
}
