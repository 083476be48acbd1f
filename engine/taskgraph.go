package engine

import "github.com/galeproject/gale/planner"

// TaskGraph is what the scheduler needs to know of a job: its stages,
// how many tasks each has and which stages each waits for. Gale's
// planner produces it from a physical plan (PlanGraph); other front ends
// (the Beam runner) build it from their own plans.
type TaskGraph struct {
	Stages []GraphStage
}

// GraphStage is one stage of a TaskGraph. Stage i of the graph is
// Stages[i]; Deps are indexes into Stages.
type GraphStage struct {
	// Tasks is the stage's task count.
	Tasks int
	// Deps lists the stages that must be done before this one starts.
	Deps []int
	// Gang tells that the stage's tasks wait for each other (an iterate
	// stage's workers): they get GangTimeout instead of TaskTimeout, no
	// backups and no adaptive deadline, and the backend starts them
	// together (backends.Task.Gang).
	Gang bool
	// Label names the stage in errors and reports.
	Label string
}

// PlanGraph returns the task graph of a physical plan.
func PlanGraph(p *planner.Plan) TaskGraph {
	g := TaskGraph{Stages: make([]GraphStage, 0, len(p.Stages))}
	for _, st := range p.Stages {
		g.Stages = append(g.Stages, GraphStage{Tasks: st.Tasks, Deps: st.Deps, Label: stageLabel(p, st),
			Gang: st.Input == planner.FromShuffle && p.Shuffles[st.Shuffle].Iterate})
	}
	return g
}
