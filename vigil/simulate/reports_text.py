"""Radiology report text the way radiologists write it: FINDINGS and IMPRESSION, negations
("no evidence of acute hemorrhage"), hedges ("cannot be excluded", "possible"), background
findings, a few British spellings. The label the text expresses is decided by the network; this
module only words it, from a per-study integer so the same study always reads the same.
"""

from __future__ import annotations

NEG, POS, UNC = 0, 1, 2


class _Pick:
    """A tiny deterministic chooser (LCG) over one study's text-choice integer."""

    __slots__ = ("s",)

    def __init__(self, seed: int) -> None:
        self.s = seed & 0x7FFFFFFF

    def __call__(self, options):
        self.s = (self.s * 1103515245 + 12345) & 0x7FFFFFFF
        return options[(self.s >> 8) % len(options)]

    def chance(self, p: float) -> bool:
        self.s = (self.s * 1103515245 + 12345) & 0x7FFFFFFF
        return ((self.s >> 8) & 0xFFFF) < p * 65536


SIDES = ("right", "left")
LOBES = ("frontal", "parietal", "temporal", "occipital")
LUNG_LOBES = ("right upper", "right middle", "right lower", "left upper", "left lower")

# --- head CT -------------------------------------------------------------------------------
HEAD_TECH = (
    "TECHNIQUE: Axial noncontrast CT images of the head were obtained. Dose reduction "
    "techniques were used.",
    "TECHNIQUE: Helical CT of the head without intravenous contrast with coronal and sagittal "
    "reformats.",
)
HEAD_BACKGROUND = (
    "The ventricles and sulci are normal in size and configuration for age.",
    "Mild periventricular white matter hypoattenuation, likely chronic small vessel ischemic "
    "change.",
    "Gray-white matter differentiation is preserved.",
    "The visualized paranasal sinuses and mastoid air cells are clear.",
    "The calvarium is intact.",
    "Chronic lacunar infarct in the left basal ganglia.",
    "Moderate generalized volume loss.",
    "Mucosal thickening in the right maxillary sinus.",
)
HEAD_NEG = (
    "No evidence of acute intracranial hemorrhage.",
    "There is no intracranial hemorrhage, mass effect or midline shift.",
    "No acute hemorrhage, extra-axial collection or territorial infarct is identified.",
    "Negative for acute intracranial hemorrhage.",
    "No intracranial hemorrhage or extra-axial fluid collection.",
)
HEAD_NEG_IMP = (
    "No acute intracranial abnormality.",
    "No acute intracranial hemorrhage.",
    "Negative noncontrast head CT.",
    "No CT evidence of acute intracranial process. Chronic changes as above.",
)
HEAD_POS = (
    "There is an acute intraparenchymal hemorrhage in the {side} {lobe} lobe measuring "
    "{a}.{b} x {c}.{d} cm with surrounding edema.",
    "Acute subdural hematoma along the {side} cerebral convexity measuring up to {mm} mm in "
    "thickness.",
    "Hyperdense subarachnoid hemorrhage within the {side} sylvian fissure and basal cisterns.",
    "Small volume intraventricular hemorrhage layering in the occipital horns of the lateral "
    "ventricles.",
    "Biconvex extra-axial hyperdense collection in the {side} temporal region compatible with "
    "an epidural hematoma, measuring {mm} mm.",
)
HEAD_POS_IMP = (
    "Acute {side} {lobe} intraparenchymal hemorrhage as described.",
    "Acute {side} subdural hematoma.",
    "Acute subarachnoid hemorrhage.",
    "Intraventricular hemorrhage.",
    "{side_cap} epidural hematoma.",
)
HEAD_SHIFT = (
    "There is {mm2} mm of {side2}ward midline shift.",
    "No midline shift.",
    "Mild local mass effect without midline shift.",
)
HEAD_UNC = (
    "Subtle hyperdensity along the {side} tentorium, which may represent volume averaging; a "
    "small subdural hemorrhage cannot be excluded.",
    "Questionable focus of hyperdensity in the {side} {lobe} lobe, possibly a small contusion "
    "versus beam hardening artifact.",
    "Equivocal hyperdensity in the interpeduncular cistern; subarachnoid hemorrhage is not "
    "excluded.",
)
HEAD_UNC_IMP = (
    "Possible small {side} tentorial subdural hemorrhage; cannot exclude. Recommend short "
    "interval follow-up CT.",
    "Indeterminate {side} {lobe} hyperdensity, possibly small hemorrhage. MRI may be considered.",
    "Equivocal finding as above; subarachnoid hemorrhage cannot be excluded. Clinical correlation "
    "recommended.",
)
CRITICAL = (
    "Findings were communicated by telephone to the ordering provider, read back and confirmed.",
    "Critical result called to the emergency department physician.",
    "Dr. {ref} was notified of the findings.",
)

# --- chest CT ------------------------------------------------------------------------------
CHEST_TECH = (
    "TECHNIQUE: Low-dose helical CT of the chest without contrast.",
    "TECHNIQUE: CT of the chest with intravenous contrast. Axial, coronal and sagittal images.",
)
CHEST_BACKGROUND = (
    "Mild centrilobular emphysema.",
    "Dependent atelectasis at the lung bases.",
    "Coronary artery calcifications.",
    "No pleural or pericardial effusion.",
    "No mediastinal, hilar or axillary lymphadenopathy.",
    "Calcified granuloma in the {side} upper lobe, benign.",
    "Mild bronchial wall thickening.",
    "The upper abdomen is unremarkable.",
)
CHEST_NEG = (
    "No suspicious pulmonary nodule or mass.",
    "No pulmonary nodules are identified.",
    "The lungs are clear without nodule, consolidation or effusion.",
    "No noncalcified pulmonary nodules.",
)
CHEST_NEG_IMP = (
    "No pulmonary nodule.",
    "No acute cardiopulmonary process. No suspicious pulmonary nodule.",
    "Lung-RADS 1: negative. Continue annual screening.",
    "No evidence of pulmonary nodule or mass.",
)
CHEST_POS = (
    "There is a {mm} mm solid nodule in the {llobe} lobe (series 3, image {img}).",
    "{mm} mm part-solid nodule in the {llobe} lobe with a {mm3} mm solid component.",
    "A {mm} mm ground-glass nodule is present in the {llobe} lobe.",
    "Spiculated {mm} mm nodule in the {llobe} lobe.",
)
CHEST_POS_IMP = (
    "{mm} mm solid pulmonary nodule in the {llobe} lobe. Lung-RADS {cat}. Recommend {rec}.",
    "{mm} mm {llobe} lobe nodule. Per Fleischner guidelines, recommend {rec}.",
    "Pulmonary nodule in the {llobe} lobe as described; recommend {rec}.",
)
CHEST_REC = ("follow-up CT in 6 months", "follow-up CT in 3 months", "PET/CT", "tissue sampling")
CHEST_UNC = (
    "Possible {mm3} mm nodule versus vessel in the {llobe} lobe; a small nodule cannot be "
    "excluded.",
    "Questionable subcentimeter opacity in the {llobe} lobe, which may represent a small nodule or "
    "focal atelectasis.",
)
CHEST_UNC_IMP = (
    "Indeterminate subcentimeter opacity in the {llobe} lobe, possibly a nodule. Follow-up CT in "
    "6-12 months could be considered.",
    "Possible small {llobe} lobe nodule; cannot exclude. Attention on follow-up.",
)

# --- procedures without a deployed model ------------------------------------------------------
OTHER = {
    2: (
        "TECHNIQUE: CT of the abdomen and pelvis with intravenous contrast.",
        ("The liver, spleen, pancreas and adrenal glands are unremarkable.",
         "No bowel obstruction. The appendix is normal.",
         "No free fluid or free air.", "Colonic diverticulosis without diverticulitis.",
         "Small hiatal hernia."),
        ("No acute abdominopelvic abnormality.", "Diverticulosis without diverticulitis.",
         "No acute findings to explain the patient's pain."),
    ),
    3: (
        "TECHNIQUE: Multiplanar multisequence MRI of the brain without and with gadolinium.",
        ("No restricted diffusion to suggest acute infarct.", "No abnormal enhancement.",
         "Scattered T2/FLAIR white matter hyperintensities, nonspecific.",
         "The major intracranial flow voids are preserved."),
        ("No acute intracranial abnormality.", "Nonspecific white matter changes.",
         "Stable examination."),
    ),
}  # fmt: skip

BRITISH = (
    ("hemorrhage", "haemorrhage"),
    ("hematoma", "haematoma"),
    ("edema", "oedema"),
    ("ischemic", "ischaemic"),
)


def _fill(text: str, p: _Pick) -> str:
    if "{" not in text:
        return text
    side = p(SIDES)
    mm = p((5, 6, 7, 8, 9, 11, 12, 14, 18, 22))
    return text.format(
        side=side,
        side_cap=side.capitalize(),
        side2=p(SIDES),
        lobe=p(LOBES),
        llobe=p(LUNG_LOBES),
        a=p((1, 2, 3, 4)),
        b=p(range(10)),
        c=p((1, 2, 3)),
        d=p(range(10)),
        mm=mm,
        mm2=p((2, 3, 4, 6, 8)),
        mm3=p((3, 4, 5)),
        img=p(range(20, 180)),
        cat=p(("3", "4A", "4B")),
        rec=p(CHEST_REC),
        ref=p(("Patel", "Nguyen", "Schmidt", "Johnson", "Alvarez")),
    )


def report_sections(
    proc: int, label: int, choice: int, indication: str, british: bool
) -> tuple[list[str], list[str]]:
    """(lines up to and including FINDINGS, IMPRESSION lines) for one report."""
    p = _Pick(choice)
    if proc == 0:
        tech, background = HEAD_TECH, HEAD_BACKGROUND
        finding = {NEG: HEAD_NEG, POS: HEAD_POS, UNC: HEAD_UNC}[label]
        impression = {NEG: HEAD_NEG_IMP, POS: HEAD_POS_IMP, UNC: HEAD_UNC_IMP}[label]
    elif proc == 1:
        tech, background = CHEST_TECH, CHEST_BACKGROUND
        finding = {NEG: CHEST_NEG, POS: CHEST_POS, UNC: CHEST_UNC}[label]
        impression = {NEG: CHEST_NEG_IMP, POS: CHEST_POS_IMP, UNC: CHEST_UNC_IMP}[label]
    else:
        t, bg, imp = OTHER[proc]
        tech, background, finding, impression = (t,), bg, (p(bg),), imp
    body = [
        f"CLINICAL HISTORY: {indication}.",
        p(("COMPARISON: None.", "COMPARISON: None available.", "COMPARISON: Prior study.")),
        p(tech),
        "FINDINGS:",
        _fill(p(finding), p),
    ]
    if proc == 0 and label == POS:
        body.append(_fill(p(HEAD_SHIFT), p))
    for _ in range(1 + (p.s >> 4) % 3):
        line = _fill(p(background), p)
        if line not in body:
            body.append(line)
    imp = [_fill(p(impression), p)]
    if label == POS and proc == 0:
        imp.append(_fill(p(CRITICAL), p))
    if p.chance(0.3) and len(body) > 5:
        imp.append(body[-1])
    imp = [f"{i}. {line}" for i, line in enumerate(imp, 1)] if len(imp) > 1 else imp
    if british:
        body = [_british(x) for x in body]
        imp = [_british(x) for x in imp]
    return body, imp


def _british(text: str) -> str:
    for us, gb in BRITISH:
        if us in text:
            text = text.replace(us, gb)
    return text


ADDENDA = (
    "ADDENDUM: Findings discussed with the referring clinician.",
    "ADDENDUM: Comparison made with outside study, which shows no interval change.",
    "ADDENDUM: Dictation error corrected in the clinical history.",
)
CORRECTION_NOTE = "CORRECTED REPORT: supersedes the previous report."
PRELIM_NOTE = "PRELIMINARY REPORT. Final report to follow."
