"""Tags used by the server, as DICOM JSON keys (PS3.18 F.2: eight upper-case hex digits)."""

SpecificCharacterSet = "00080005"
SOPClassUID = "00080016"
SOPInstanceUID = "00080018"
StudyDate = "00080020"
SeriesDate = "00080021"
StudyTime = "00080030"
SeriesTime = "00080031"
AccessionNumber = "00080050"
Modality = "00080060"
ModalitiesInStudy = "00080061"
TimezoneOffsetFromUTC = "00080201"
StudyDescription = "00081030"
SeriesDescription = "0008103E"
RetrieveURL = "00081190"
PatientName = "00100010"
PatientID = "00100020"
IssuerOfPatientID = "00100021"
PatientBirthDate = "00100030"
PatientSex = "00100040"
StudyInstanceUID = "0020000D"
SeriesInstanceUID = "0020000E"
StudyID = "00200010"
SeriesNumber = "00200011"
InstanceNumber = "00200013"
NumberOfStudyRelatedSeries = "00201206"
NumberOfStudyRelatedInstances = "00201208"
NumberOfSeriesRelatedInstances = "00201209"
BodyPartExamined = "00180015"
NumberOfFrames = "00280008"

STUDY_FIELDS = (
    StudyInstanceUID,
    StudyDate,
    StudyTime,
    TimezoneOffsetFromUTC,
    AccessionNumber,
    ModalitiesInStudy,
    StudyDescription,
    PatientID,
    PatientName,
    StudyID,
    NumberOfStudyRelatedSeries,
    NumberOfStudyRelatedInstances,
)
SERIES_FIELDS = (
    SeriesInstanceUID,
    SeriesNumber,
    Modality,
    SeriesDescription,
    SeriesDate,
    SeriesTime,
    NumberOfSeriesRelatedInstances,
    BodyPartExamined,
)
INSTANCE_FIELDS = (SOPInstanceUID, SOPClassUID, InstanceNumber, SeriesInstanceUID, NumberOfFrames)
