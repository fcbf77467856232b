//! Execution Plane kernel (pure): dispatch planning, events and outcomes, lower simulation.
