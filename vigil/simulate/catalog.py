"""The simulated network's fixed facts: sites, scanners, procedures, models, demographics, names.

Everything here is plain data, so the manifest can be written from it and a reader can see the
whole network in one file. Numbers are chosen to look like a mid-sized US health system; none is
taken from a real institution.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitors.frame import AGE_BANDS as _MONITOR_AGE_BANDS

# --- sites ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    code: str
    name: str
    character: str
    ris: str  # MSH-3 of the site's RIS/ADT feed
    share: float  # share of the network's studies
    class_mix: tuple[float, float, float]  # inpatient, outpatient, emergency
    age_mean: float
    age_sd: float
    proc_mix: tuple[float, float, float, float]  # CTHEAD, CTCHEST, CTABD, MRBRAIN
    race_mix: tuple[float, ...]  # in RACES order
    hispanic: float  # share Hispanic or Latino
    prelim_share: float  # share of inpatient/emergency reads with a preliminary report
    coded_share: float  # share of reports with a coded finding OBX (RADIS only)


SITES: tuple[Site, ...] = (
    Site(
        "NGH", "North General Hospital", "academic, many inpatients", "RADIS", 0.35,
        (0.45, 0.30, 0.25), 58, 19, (0.40, 0.35, 0.15, 0.10),
        (0.58, 0.22, 0.09, 0.01, 0.01, 0.04, 0.05), 0.14, 0.45, 0.70,
    ),
    Site(
        "SCH", "South Community Hospital", "community hospital", "RADIS", 0.25,
        (0.25, 0.45, 0.30), 61, 18, (0.45, 0.35, 0.15, 0.05),
        (0.72, 0.12, 0.04, 0.01, 0.00, 0.04, 0.07), 0.09, 0.10, 0.50,
    ),
    Site(
        "EMC", "East Medical Center", "trauma centre, emergency-heavy", "SYNRIS", 0.25,
        (0.25, 0.15, 0.60), 47, 21, (0.55, 0.25, 0.15, 0.05),
        (0.45, 0.30, 0.05, 0.02, 0.01, 0.09, 0.08), 0.28, 0.40, 0.0,
    ),
    Site(
        "WIC", "West Imaging Center", "outpatient imaging centre, older patients", "SYNRIS", 0.15,
        (0.05, 0.95, 0.00), 67, 13, (0.20, 0.55, 0.10, 0.15),
        (0.70, 0.10, 0.10, 0.01, 0.00, 0.03, 0.06), 0.08, 0.0, 0.0,
    ),
)  # fmt: skip

SITE_INDEX = {s.code: i for i, s in enumerate(SITES)}

PATIENT_CLASSES = ("inpatient", "outpatient", "emergency")
PV1_CLASS = ("I", "O", "E")

RACES = (  # (CDC code, text); the last is "unknown" (PID-10 empty or UNK)
    ("2106-3", "White"),
    ("2054-5", "Black or African American"),
    ("2028-9", "Asian"),
    ("1002-5", "American Indian or Alaska Native"),
    ("2076-8", "Native Hawaiian or Other Pacific Islander"),
    ("2131-1", "Other Race"),
    ("UNK", "Unknown"),
)
ETHNICITIES = (
    ("2135-2", "Hispanic or Latino"),
    ("2186-5", "Not Hispanic or Latino"),
    ("UNK", "Unknown"),
)
SEXES = ("F", "M", "U")

# the monitors' bands, so the manifest's per-band truth is exactly what the fairness monitor scans
AGE_BANDS: tuple[tuple[str, int, int], ...] = tuple(_MONITOR_AGE_BANDS)

# --- procedures ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Procedure:
    code: str
    name: str
    modality: str
    body_part: str
    model: int  # index into MODELS, -1 when no deployed model reads it
    read_min: float  # median interpretation time, minutes


PROCEDURES: tuple[Procedure, ...] = (
    Procedure("CTHEAD", "CT head without contrast", "CT", "HEAD", 0, 6.0),
    Procedure("CTCHEST", "CT chest", "CT", "CHEST", 1, 10.0),
    Procedure("CTABD", "CT abdomen and pelvis with contrast", "CT", "ABDOMEN", -1, 14.0),
    Procedure("MRBRAIN", "MR brain without and with contrast", "MR", "HEAD", -1, 16.0),
)

# --- scanners --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scanner:
    key: str
    site: str
    modality: str
    manufacturer: str  # DICOM (0008,0070) as the scanner writes it
    model: str  # DICOM (0008,1090)
    kvp: int
    slice_mm: float
    weight: float  # share of its site's studies of this modality
    contrast: float  # scanner contrast factor: multiplies the finding's visibility
    offset: float  # shift of the AI's latent score on this scanner (score drift)
    replacement: bool = False  # only in use after the scanner replacement event


# fmt: off
SCANNERS: tuple[Scanner, ...] = (
    Scanner("NGH-CT1", "NGH", "CT", "SIEMENS", "SOMATOM Force", 120, 1.0, 0.6, 1.05, 0.00),
    Scanner("NGH-CT2", "NGH", "CT", "GE MEDICAL SYSTEMS", "Revolution CT", 120, 1.25, 0.4, 1.0,
            0.05),
    Scanner("NGH-MR1", "NGH", "MR", "SIEMENS", "MAGNETOM Vida", 0, 1.0, 1.0, 1.0, 0.0),
    Scanner("SCH-CT1", "SCH", "CT", "GE MEDICAL SYSTEMS", "Optima CT660", 120, 2.5, 1.0, 0.95,
            0.05),
    Scanner("SCH-MR1", "SCH", "MR", "GE MEDICAL SYSTEMS", "SIGNA Explorer", 0, 1.0, 1.0, 1.0, 0.0),
    Scanner("EMC-CT1", "EMC", "CT", "SIEMENS", "SOMATOM Definition AS+", 120, 1.0, 0.55, 1.0, 0.0),
    Scanner("EMC-CT2", "EMC", "CT", "Philips", "Brilliance iCT", 120, 1.0, 0.45, 0.98, -0.05),
    Scanner("EMC-MR1", "EMC", "MR", "Philips", "Ingenia", 0, 1.0, 1.0, 1.0, 0.0),
    Scanner("WIC-CT1", "WIC", "CT", "CANON_MEC", "Aquilion Prime SP", 120, 1.0, 1.0, 1.0, -0.05),
    Scanner("WIC-MR1", "WIC", "MR", "SIEMENS", "MAGNETOM Skyra", 0, 1.0, 1.0, 1.0, 0.0),
    # the scanner replacement event's newcomer at EMC: lower contrast, scores shifted upwards
    Scanner(
        "EMC-CT3", "EMC", "CT", "CANON_MEC", "Aquilion ONE PRISM", 100, 0.5, 0.0, 0.72, 0.30,
        replacement=True,
    ),
)
# fmt: on

SCANNER_INDEX = {s.key: i for i, s in enumerate(SCANNERS)}

# --- models --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    version: str
    separation: float  # d: positives' latent mean minus negatives' (before scanner contrast)
    slope: float  # score = logistic(slope * z + intercept)
    intercept: float


@dataclass(frozen=True)
class ModelSpec:
    name: str
    finding: str
    sender: str  # MSH-3 of the vendor's ORU
    vendor: str
    product: str
    procedure: str
    body_part: str
    threshold: float  # operating threshold on the 0-1 score
    versions: tuple[Version, ...]  # [0] at go-live; [1] after a version update event
    go_live_frac: float  # go-live date as a fraction of the simulated period
    miss_rate: float  # radiologist: P(reads negative | finding present)
    overcall_rate: float  # radiologist: P(reads positive | finding absent)
    uncertain_pos: float  # radiologist: P(hedged, uncertain | present)
    uncertain_neg: float  # radiologist: P(hedged, uncertain | absent)
    target_sensitivity: float
    target_specificity: float
    intended_use: str
    clearance_id: str
    owner: str
    pediatric_factor: float  # multiplies d for ages 0-17 (outside the intended use)


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="neurovue-ich",
        finding="ich",
        sender="NEUROVUE",
        vendor="NeuroVue Imaging Inc. (simulated)",
        product="NeuroVue ICH",
        procedure="CTHEAD",
        body_part="HEAD",
        threshold=0.5,
        versions=(Version("3.1.2", 2.85, 1.6, -2.6),),
        go_live_frac=0.25,
        miss_rate=0.04,
        overcall_rate=0.012,
        uncertain_pos=0.05,
        uncertain_neg=0.015,
        target_sensitivity=0.85,
        target_specificity=0.90,
        intended_use=(
            "Triage and notification of suspected acute intracranial hemorrhage on non-contrast "
            "head CT of adults (18+). Not for diagnosis; the radiologist reads every study."
        ),
        clearance_id="SIM-K990101",
        owner="Dr. Amara Okafor, Neuroradiology",
        pediatric_factor=0.8,
    ),
    ModelSpec(
        name="lungsight-nodule",
        finding="lung_nodule",
        sender="LUNGSIGHT",
        vendor="LungSight Analytics Ltd. (simulated)",
        product="LungSight Nodule",
        procedure="CTCHEST",
        body_part="CHEST",
        threshold=0.4,
        versions=(Version("2.3.1", 2.1, 1.3, -1.75), Version("2.4.0", 2.25, 1.1, -0.95)),
        go_live_frac=0.2,
        miss_rate=0.10,
        overcall_rate=0.03,
        uncertain_pos=0.07,
        uncertain_neg=0.03,
        target_sensitivity=0.80,
        target_specificity=0.80,
        intended_use=(
            "Detection of solid and part-solid pulmonary nodules of 4 mm or more on chest CT of "
            "adults, as a concurrent reader aid."
        ),
        clearance_id="SIM-K990202",
        owner="Dr. Lucas Weber, Thoracic Imaging",
        pediatric_factor=0.9,
    ),
)

MODEL_INDEX = {m.name: i for i, m in enumerate(MODELS)}

# --- people ------------------------------------------------------------------------------------

GIVEN_F = (
    "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah",
    "Karen", "Lisa", "Nancy", "Betty", "Sandra", "Margaret", "Ashley", "Emily", "Donna", "Michelle",
    "Carol", "Amanda", "Melissa", "Deborah", "Stephanie", "Maria", "Sofía", "Ana", "Mei", "Aaliyah",
    "Fatima", "Priya", "Zoë", "Chloé", "Ngozi", "Ingrid", "Hannah", "Grace", "Olivia", "Ava",
)  # fmt: skip
GIVEN_M = (
    "James", "Robert", "John", "Michael", "David", "William", "Richard", "Joseph", "Thomas",
    "Christopher", "Charles", "Daniel", "Matthew", "Anthony", "Mark", "Donald", "Steven", "Paul",
    "Andrew", "Joshua", "Kenneth", "Kevin", "Brian", "José", "Luis", "Carlos", "Wei", "Hiroshi",
    "Mohammed", "Omar", "Raj", "Kwame", "Björn", "François", "Liam", "Noah", "Ethan", "Samuel",
)  # fmt: skip
FAMILY = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore",
    "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark",
    "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres",
    "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell",
    "Mitchell", "Carter", "Roberts", "O'Brien", "Müller", "Peña", "Øster", "Kowalski", "Chen",
    "Patel", "Okafor", "Kim", "Singh", "Yamamoto", "Cohen", "Rossi", "Dubois", "Ivanova", "Haddad",
)  # fmt: skip
STREETS = ("Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Elm St", "Pine Rd", "Lakeview Blvd",
           "Washington Ave", "2nd St", "Park Pl", "Hillcrest Dr", "River Rd")  # fmt: skip
CITIES = (("Springfield", "IL", "627"), ("Riverton", "IL", "625"), ("Fairview", "IL", "622"),
          ("Lakeside", "IL", "606"), ("Oak Park", "IL", "603"))  # fmt: skip

# radiologists per site: (id, family, given, british spelling)
RADIOLOGISTS: dict[str, tuple[tuple[str, str, str, bool], ...]] = {
    "NGH": (("R1001", "Harrington", "Claire", False), ("R1002", "Osei", "Kofi", False),
            ("R1003", "Lindqvist", "Eva", True), ("R1004", "Moreno", "Diego", False),
            ("R1005", "Shah", "Anjali", False), ("R1006", "Fitzgerald", "Owen", True)),
    "SCH": (("R2001", "Baker", "Thomas", False), ("R2002", "Ito", "Yuki", False),
            ("R2003", "Novak", "Petra", False)),
    "EMC": (("R3001", "Adeyemi", "Tunde", False), ("R3002", "Kowalczyk", "Marta", False),
            ("R3003", "Brennan", "Sean", True), ("R3004", "Vasquez", "Elena", False),
            ("R3005", "Park", "Min-jun", False)),
    "WIC": (("R4001", "Goldberg", "Ruth", False), ("R4002", "Haddad", "Karim", False)),
}  # fmt: skip

INDICATIONS = {
    "CTHEAD": ("Headache", "Fall on anticoagulation", "Altered mental status", "Head trauma",
               "Syncope", "Dizziness", "Stroke symptoms, last known well 2 hours ago",
               "Confusion & headache", "MVC, loss of consciousness"),
    "CTCHEST": ("Lung cancer screening", "Cough", "Shortness of breath", "Follow-up nodule",
                "Weight loss", "Hemoptysis", "Chest pain", "Staging, breast cancer"),
    "CTABD": ("Abdominal pain", "RLQ pain", "Fever & abdominal pain", "Trauma"),
    "MRBRAIN": ("Headache", "Seizure", "Multiple sclerosis follow-up", "Vertigo"),
}  # fmt: skip
