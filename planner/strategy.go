package planner

import "fmt"

// liftedRecordBytes is the planner's guess at the encoded size of one
// partial aggregate (key and accumulator) of a lifted combine.
const liftedRecordBytes = 32

// strategy decides whether shuffle s of node n goes through Glider
// actions. With a fixed strategy (Options.GliderAuto unset) a shuffle
// Glider can take does so exactly when Options.Glider is set, and the
// reason is empty. With GliderAuto the planner chooses per shuffle from
// the bytes it estimates before and after combiner lifting, and says why:
//
//   - sorts and unlifted combines that merge actions can fold move every
//     byte they read across the shuffle; Glider's actions sort or fold them
//     as they arrive and save the write and read-back of shuffle objects
//     (bench/shuffle: 0.56x the time on sort, 0.50x on the reduce);
//   - a lifted combine sends only partial aggregates, at most one per key
//     and task; when they are estimated under half the input, little is
//     left for the merge actions to save and the extra hop costs more than
//     it saves (bench/shuffle: word count 1.24x slower through Glider), so
//     data shipping; when the keys are known to be too many to shrink the
//     data (Node.Keys), Glider;
//   - no Glider cluster the backend's workers can reach
//     (Options.GliderUnavailable), or a shuffle Glider cannot take
//     (GroupByKey, Iterate, combines merge actions cannot fold): data
//     shipping.
func (c *compiler) strategy(s *Shuffle, n Node) (glider bool, reason string) {
	capable := s.Combined || s.Range || (n.Kind == Combine && c.opt.GliderUnlifted[n.ID])
	if !c.opt.GliderAuto {
		return c.opt.Glider && capable, ""
	}
	before := s.EstimatedBytes
	switch {
	case !capable:
		return false, "auto: data shipping, Glider takes only sorts and the combines its merge actions can fold"
	case !c.opt.Glider:
		return false, "auto: data shipping, " + c.opt.GliderUnavailable
	case s.Range:
		return true, fmt.Sprintf("auto: glider, the sort moves all of its ~%s; sort actions sort it as it arrives", bytesString(before))
	case !s.Combined:
		return true, fmt.Sprintf("auto: glider, every value (~%s) crosses the shuffle unlifted; merge actions fold them as they arrive", bytesString(before))
	}
	if n.Keys > 0 {
		after := min(before, n.Keys*liftedRecordBytes*int64(c.opt.Parallelism))
		if 2*after >= before {
			return true, fmt.Sprintf("auto: glider, %d keys keep the partial aggregates at ~%s of ~%s; merge actions fold them as they arrive",
				n.Keys, bytesString(after), bytesString(before))
		}
		return false, fmt.Sprintf("auto: data shipping, lifting shrinks ~%s to ~%s of partial aggregates (%d keys), too little for merge actions to save",
			bytesString(before), bytesString(after), n.Keys)
	}
	return false, fmt.Sprintf("auto: data shipping, lifting shrinks ~%s to partial aggregates (one per key and task), too little for merge actions to save",
		bytesString(before))
}

// bytesString prints a byte count in binary units.
func bytesString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
