//! [`Node::step`]: the core's one entry point, and the contract every driver
//! relies on.
//!
//! The election rules are [`crate::node`]'s; this wraps them with what holds
//! of every step whatever the rule: the new hard state is persisted first,
//! and in debug builds the node's state and the step's outputs are checked
//! against [`crate::invariants`]. Kept apart from the rules so the checks
//! read the node from outside, as every other checker does.

use crate::config::Config;
use crate::node::{Input, Node, Output};

impl Node {
    /// Handles one input and appends the outputs to `out`, in execution order.
    ///
    /// Never panics on any input (a forged sender, a message from itself, any
    /// term): what must be ignored is ignored. In debug builds the node's
    /// invariants, the output contract and the step's rule
    /// ([`crate::invariants::check_transition`]) are asserted at the end.
    pub fn step(&mut self, config: &Config, input: Input, out: &mut Vec<Output>) {
        #[cfg(debug_assertions)]
        let (node_before, first) = (self.clone(), out.len());
        self.step_without_assertions(config, input, out);
        #[cfg(debug_assertions)]
        {
            if let Err(violation) = crate::invariants::check_node(config, self) {
                panic!("{} broke a node invariant: {violation}", config.id());
            }
            let outputs = &out[first..];
            let (before, after) = (node_before.hard_state(), self.hard_state());
            if let Err(violation) = crate::invariants::check_outputs(config, before, after, outputs)
            {
                panic!("{} broke the output contract: {violation}", config.id());
            }
            if let Err(violation) =
                crate::invariants::check_transition(config, &node_before, &input, self, outputs)
            {
                panic!("{} broke its rule: {violation}", config.id());
            }
        }
    }

    /// [`Self::step`] without its debug-build assertions: the same rules and
    /// outputs, the persist first. For a harness that keeps the node's state
    /// before each step and runs every check of [`crate::invariants`] on it
    /// itself (the simulators, the fuzz targets): with `step` it would clone
    /// the node and run the node-local checks a second time.
    pub fn step_without_assertions(
        &mut self,
        config: &Config,
        input: Input,
        out: &mut Vec<Output>,
    ) {
        let before = self.hard_state();
        let first = out.len();
        self.apply(config, input, out);
        // Persist before anything that depends on it leaves the node. Putting the
        // one Persist first covers every send of this step, whichever rule made it.
        if self.hard_state() != before {
            out.insert(first, Output::Persist(self.hard_state()));
        }
    }
}
