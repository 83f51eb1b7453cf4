//! A vision network's sections: the runs of layers that keep one map size (the CNN's two-block
//! stages, a ResNet's stages, a DenseNet's dense blocks). FitNets reads a section's output as
//! its hint and guided layer, FSP the flow between a section's first and last maps; this says
//! what those maps are, from the spec alone, so that a control the two networks cannot pair is
//! refused before anything trains. `models` yields the same maps (a test keeps them equal).

use super::cnn::{convs, pools_after};
use super::{Shape, conv_out, densenet_layout, preact_layout};
use crate::spec::{Control, ModelSpec};

/// The first and last map of one section: the output of its first layer (CNN block, residual
/// unit, dense layer) and of its last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionShape {
    /// Channels of the first layer's output.
    pub first: usize,
    /// Channels of the section's output.
    pub last: usize,
    /// Height and width of both.
    pub size: [usize; 2],
}

/// The sections of `spec` on images of `shape`, in order; none for an MLP.
pub fn sections(spec: &ModelSpec, shape: Shape) -> Vec<SectionShape> {
    let mut size = [shape.height, shape.width];
    match spec {
        ModelSpec::Mlp { .. } => Vec::new(),
        ModelSpec::Cnn { width } => {
            let mut out = Vec::new();
            let mut first = None;
            let blocks = convs(*width, shape.channels);
            for (i, (_, to)) in blocks.into_iter().enumerate() {
                let section_first = *first.get_or_insert(to);
                // A section ends at each max pool and at the last block.
                if pools_after(i) || i + 1 == blocks.len() {
                    out.push(SectionShape {
                        first: section_first,
                        last: to,
                        size,
                    });
                    size = size.map(|s| s / 2);
                    first = None;
                }
            }
            out
        }
        ModelSpec::PreactResnet { .. } | ModelSpec::WideResnet { .. } => {
            let mut out: Vec<SectionShape> = Vec::new();
            for unit in preact_layout(spec).plan() {
                for c in &unit.convs {
                    size = size.map(|s| conv_out(s, c.kernel, c.stride));
                }
                match out.last_mut() {
                    Some(section) if unit.stride == 1 => section.last = unit.to,
                    _ => out.push(SectionShape {
                        first: unit.to,
                        last: unit.to,
                        size,
                    }),
                }
            }
            out
        }
        ModelSpec::DensenetBc { .. } => {
            let layout = densenet_layout(spec);
            let mut channels = layout.stem;
            let mut out = Vec::new();
            for (b, &n) in layout.block_layers.iter().enumerate() {
                // A block without layers passes its input through: both maps are that input.
                let first = channels + if n > 0 { layout.growth } else { 0 };
                channels += n * layout.growth;
                out.push(SectionShape {
                    first,
                    last: channels,
                    size,
                });
                if layout.has_transition(b) {
                    channels = layout.compress(channels);
                    size = size.map(|s| s / 2);
                }
            }
            out
        }
    }
}

/// Whether `control` can pair `teacher`'s sections with `student`'s on images of `shape`.
/// FitNets: the hint and guided sections exist and their maps have one size (the regressor is
/// a 1x1 convolution, which bridges channel counts only). FSP: every section it matches
/// exists in both networks, with equal channels at both ends (an FSP matrix is first x last
/// channels) and one map size. Other controls read no sections. Errors are (key, message)
/// and name both networks.
pub fn check_pairing(
    control: &Control,
    teacher: &ModelSpec,
    student: &ModelSpec,
    shape: Shape,
) -> Result<(), (&'static str, String)> {
    let (t, s) = (sections(teacher, shape), sections(student, shape));
    let lacks = |spec: &ModelSpec, n: usize, has: usize, role: &str| {
        format!(
            "{role} {spec} has no section {n} (it has {has}: {})",
            listing(spec, shape)
        )
    };
    match control {
        Control::Fitnets { fitnets, .. } => {
            let (Some(hint), Some(guided)) = (
                fitnets.hint.checked_sub(1).and_then(|i| t.get(i)),
                fitnets.guided.checked_sub(1).and_then(|i| s.get(i)),
            ) else {
                return Err(if fitnets.hint == 0 || fitnets.hint > t.len() {
                    (
                        "fitnets.hint",
                        lacks(teacher, fitnets.hint, t.len(), "the teacher"),
                    )
                } else {
                    (
                        "fitnets.guided",
                        lacks(student, fitnets.guided, s.len(), "the student"),
                    )
                });
            };
            if hint.size != guided.size {
                return Err((
                    "fitnets.guided",
                    format!(
                        "the student {student}'s section {} has {}x{} maps, the teacher {teacher}'s hint section {} {}x{}: the 1x1 regressor needs one size",
                        fitnets.guided,
                        guided.size[0],
                        guided.size[1],
                        fitnets.hint,
                        hint.size[0],
                        hint.size[1]
                    ),
                ));
            }
            Ok(())
        }
        Control::Fsp { sections: set, .. } => {
            let shared = t.len().min(s.len());
            if shared == 0 {
                let (spec, role) = if t.is_empty() {
                    (teacher, "teacher")
                } else {
                    (student, "student")
                };
                return Err((
                    "control",
                    format!("FSP reads feature maps, and the {role} {spec} has none"),
                ));
            }
            for n in set.resolve(shared) {
                let (Some(a), Some(b)) = (t.get(n - 1), s.get(n - 1)) else {
                    return Err(if n > t.len() {
                        ("fsp.sections", lacks(teacher, n, t.len(), "the teacher"))
                    } else {
                        ("fsp.sections", lacks(student, n, s.len(), "the student"))
                    });
                };
                if (a.first, a.last, a.size) != (b.first, b.last, b.size) {
                    return Err((
                        "fsp.sections",
                        format!(
                            "section {n}'s FSP matrices differ in shape: the teacher {teacher}'s is {}x{} on {}x{} maps, the student {student}'s {}x{} on {}x{}; FSP matches networks whose sections have equal channels (pick other sections, or architectures with the same stage widths)",
                            a.first,
                            a.last,
                            a.size[0],
                            a.size[1],
                            b.first,
                            b.last,
                            b.size[0],
                            b.size[1]
                        ),
                    ));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// "1: 16->16 at 32x32, 2: 32->32 at 16x16, ..." for messages.
fn listing(spec: &ModelSpec, shape: Shape) -> String {
    let listed: Vec<String> = sections(spec, shape)
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "{}: {}->{} channels at {}x{}",
                i + 1,
                s.first,
                s.last,
                s.size[0],
                s.size[1]
            )
        })
        .collect();
    if listed.is_empty() {
        "no feature maps".into()
    } else {
        listed.join(", ")
    }
}
