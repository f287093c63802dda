// A switch for measuring a change against the code it replaces, in one process.
//
// The machines this project runs on are shared virtual machines whose speed drifts by +-25% within
// minutes, so two builds timed one after the other compare the machine's moods more than the code.
// bench/ab_inprocess.cpp alternates variants every few calls (or training steps) in one process and
// compares them pairwise; the code under test reads the variant here, temporarily:
//
//   if (dev::experiment() & 1) { ...new... } else { ...old... }
//
// Code on main does not read it (tests/layers/check_layers.py keeps that true); it costs nothing.
#pragma once

namespace synapse::dev {

int experiment();
void set_experiment(int variant);

}  // namespace synapse::dev
