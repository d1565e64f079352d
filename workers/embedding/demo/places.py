"""Real positions for demo photos and tests, and GPS EXIF that carries them.

The positions are well-known spots, so the offline geocoder (``workers.embedding.places``)
names them as a person would: the Praça do Comércio is in Lisbon, Portugal.
"""

from __future__ import annotations

from PIL import Image

GPS_IFD = 0x8825

# name → (latitude, longitude, the city and ISO country code the geocoder gives)
DEMO_PLACES: dict[str, tuple[float, float, str, str]] = {
    "lisbon": (38.7075, -9.1364, "Lisbon", "PT"),  # Praça do Comércio
    "lisbon-belem": (38.6916, -9.2160, "Lisbon", "PT"),  # Torre de Belém
    "porto": (41.1408, -8.6112, "Porto", "PT"),  # Ribeira
    "paris": (48.8606, 2.3376, "Paris", "FR"),  # the Louvre
    "nice": (43.6953, 7.2650, "Nice", "FR"),  # Promenade des Anglais
    "new-york": (40.7580, -73.9855, "Manhattan", "US"),  # Times Square
}


def exif_with_position(exif: Image.Exif, latitude: float, longitude: float) -> Image.Exif:
    """``exif`` with a GPS position (degrees, minutes, seconds, as cameras write it)."""
    gps = exif.get_ifd(GPS_IFD)
    gps[1], gps[2] = ("N" if latitude >= 0 else "S"), _dms(abs(latitude))
    gps[3], gps[4] = ("E" if longitude >= 0 else "W"), _dms(abs(longitude))
    return exif


def _dms(degrees: float) -> tuple[float, float, float]:
    whole = int(degrees)
    minutes = int((degrees - whole) * 60)
    seconds = round(((degrees - whole) * 60 - minutes) * 60, 2)
    return (float(whole), float(minutes), seconds)
