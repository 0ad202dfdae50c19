"""Built-in labeled datasets for demos and tests.

The main entry point is :func:`city_facts`, which builds a balanced set of true and false statements of the form
``"The city of {city} is in {country}."`` from a small built-in table of well-known cities (:data:`CITY_COUNTRIES`).
Everything is generated deterministically from a seed, so no download is needed.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np

__all__ = ["CITY_COUNTRIES", "STATEMENT_TEMPLATE", "CityFacts", "city_facts"]

#: Format of every statement; ``country`` is written exactly as it appears in :data:`CITY_COUNTRIES`.
STATEMENT_TEMPLATE = "The city of {city} is in {country}."

#: Well-known cities and the country each is in, as ``(city, country)`` pairs.
#:
#: Country names are written the way they read in an English sentence, with a leading "the" where English needs
#: one (e.g. "the United States"). Cities whose name is shared by another well-known city in a different country
#: (Valencia, Cordoba, Hyderabad, Tripoli, Kingston, Birmingham, Vancouver, ...), cities whose name contains a
#: country name (Mexico City, Panama City, ...) and places whose country is disputed were deliberately left out.
#: The country "Georgia" is left out as well, since it is also the name of a U.S. state.
CITY_COUNTRIES: tuple[tuple[str, str], ...] = (
    # North America
    ("New York", "the United States"),
    ("Los Angeles", "the United States"),
    ("Chicago", "the United States"),
    ("Houston", "the United States"),
    ("San Francisco", "the United States"),
    ("Seattle", "the United States"),
    ("Boston", "the United States"),
    ("Philadelphia", "the United States"),
    ("Atlanta", "the United States"),
    ("New Orleans", "the United States"),
    ("Las Vegas", "the United States"),
    ("Denver", "the United States"),
    ("Toronto", "Canada"),
    ("Montreal", "Canada"),
    ("Ottawa", "Canada"),
    ("Calgary", "Canada"),
    ("Monterrey", "Mexico"),
    ("Tijuana", "Mexico"),
    ("Cancun", "Mexico"),
    # The Caribbean
    ("Havana", "Cuba"),
    ("Santo Domingo", "the Dominican Republic"),
    # South America
    ("Sao Paulo", "Brazil"),
    ("Rio de Janeiro", "Brazil"),
    ("Brasilia", "Brazil"),
    ("Manaus", "Brazil"),
    ("Buenos Aires", "Argentina"),
    ("Mendoza", "Argentina"),
    ("Santiago", "Chile"),
    ("Valparaiso", "Chile"),
    ("Lima", "Peru"),
    ("Cusco", "Peru"),
    ("Bogota", "Colombia"),
    ("Medellin", "Colombia"),
    ("Caracas", "Venezuela"),
    ("Quito", "Ecuador"),
    ("Guayaquil", "Ecuador"),
    ("Montevideo", "Uruguay"),
    ("Asuncion", "Paraguay"),
    # Western Europe
    ("London", "the United Kingdom"),
    ("Manchester", "the United Kingdom"),
    ("Liverpool", "the United Kingdom"),
    ("Edinburgh", "the United Kingdom"),
    ("Glasgow", "the United Kingdom"),
    ("Cardiff", "the United Kingdom"),
    ("Dublin", "Ireland"),
    ("Paris", "France"),
    ("Marseille", "France"),
    ("Lyon", "France"),
    ("Toulouse", "France"),
    ("Nice", "France"),
    ("Bordeaux", "France"),
    ("Strasbourg", "France"),
    ("Berlin", "Germany"),
    ("Hamburg", "Germany"),
    ("Munich", "Germany"),
    ("Cologne", "Germany"),
    ("Frankfurt", "Germany"),
    ("Stuttgart", "Germany"),
    ("Dresden", "Germany"),
    ("Rome", "Italy"),
    ("Milan", "Italy"),
    ("Naples", "Italy"),
    ("Turin", "Italy"),
    ("Florence", "Italy"),
    ("Venice", "Italy"),
    ("Palermo", "Italy"),
    ("Madrid", "Spain"),
    ("Barcelona", "Spain"),
    ("Seville", "Spain"),
    ("Bilbao", "Spain"),
    ("Malaga", "Spain"),
    ("Lisbon", "Portugal"),
    ("Porto", "Portugal"),
    ("Amsterdam", "the Netherlands"),
    ("Rotterdam", "the Netherlands"),
    ("Brussels", "Belgium"),
    ("Antwerp", "Belgium"),
    ("Zurich", "Switzerland"),
    ("Geneva", "Switzerland"),
    ("Vienna", "Austria"),
    # Northern Europe
    ("Copenhagen", "Denmark"),
    ("Stockholm", "Sweden"),
    ("Gothenburg", "Sweden"),
    ("Oslo", "Norway"),
    ("Bergen", "Norway"),
    ("Helsinki", "Finland"),
    ("Reykjavik", "Iceland"),
    ("Tallinn", "Estonia"),
    ("Riga", "Latvia"),
    ("Vilnius", "Lithuania"),
    # Central and Eastern Europe
    ("Warsaw", "Poland"),
    ("Krakow", "Poland"),
    ("Prague", "the Czech Republic"),
    ("Budapest", "Hungary"),
    ("Zagreb", "Croatia"),
    ("Dubrovnik", "Croatia"),
    ("Belgrade", "Serbia"),
    ("Sarajevo", "Bosnia and Herzegovina"),
    ("Athens", "Greece"),
    ("Thessaloniki", "Greece"),
    ("Sofia", "Bulgaria"),
    ("Bucharest", "Romania"),
    ("Kyiv", "Ukraine"),
    ("Minsk", "Belarus"),
    ("Moscow", "Russia"),
    # Western Asia and the Middle East
    ("Istanbul", "Turkey"),
    ("Ankara", "Turkey"),
    ("Yerevan", "Armenia"),
    ("Baku", "Azerbaijan"),
    ("Tel Aviv", "Israel"),
    ("Amman", "Jordan"),
    ("Beirut", "Lebanon"),
    ("Damascus", "Syria"),
    ("Baghdad", "Iraq"),
    ("Tehran", "Iran"),
    ("Isfahan", "Iran"),
    ("Riyadh", "Saudi Arabia"),
    ("Jeddah", "Saudi Arabia"),
    ("Mecca", "Saudi Arabia"),
    ("Dubai", "the United Arab Emirates"),
    ("Abu Dhabi", "the United Arab Emirates"),
    ("Doha", "Qatar"),
    # Africa
    ("Cairo", "Egypt"),
    ("Luxor", "Egypt"),
    ("Casablanca", "Morocco"),
    ("Marrakesh", "Morocco"),
    ("Rabat", "Morocco"),
    ("Tunis", "Tunisia"),
    ("Algiers", "Algeria"),
    ("Khartoum", "Sudan"),
    ("Addis Ababa", "Ethiopia"),
    ("Nairobi", "Kenya"),
    ("Mombasa", "Kenya"),
    ("Kampala", "Uganda"),
    ("Kigali", "Rwanda"),
    ("Dar es Salaam", "Tanzania"),
    ("Lagos", "Nigeria"),
    ("Abuja", "Nigeria"),
    ("Accra", "Ghana"),
    ("Dakar", "Senegal"),
    ("Luanda", "Angola"),
    ("Harare", "Zimbabwe"),
    ("Maputo", "Mozambique"),
    ("Johannesburg", "South Africa"),
    ("Cape Town", "South Africa"),
    ("Durban", "South Africa"),
    # South and Central Asia
    ("Karachi", "Pakistan"),
    ("Lahore", "Pakistan"),
    ("Islamabad", "Pakistan"),
    ("Kabul", "Afghanistan"),
    ("Mumbai", "India"),
    ("New Delhi", "India"),
    ("Bangalore", "India"),
    ("Chennai", "India"),
    ("Kolkata", "India"),
    ("Jaipur", "India"),
    ("Dhaka", "Bangladesh"),
    ("Colombo", "Sri Lanka"),
    ("Kathmandu", "Nepal"),
    ("Almaty", "Kazakhstan"),
    ("Astana", "Kazakhstan"),
    ("Tashkent", "Uzbekistan"),
    ("Samarkand", "Uzbekistan"),
    # East and Southeast Asia
    ("Beijing", "China"),
    ("Shanghai", "China"),
    ("Guangzhou", "China"),
    ("Shenzhen", "China"),
    ("Chengdu", "China"),
    ("Wuhan", "China"),
    ("Nanjing", "China"),
    ("Ulaanbaatar", "Mongolia"),
    ("Tokyo", "Japan"),
    ("Osaka", "Japan"),
    ("Kyoto", "Japan"),
    ("Yokohama", "Japan"),
    ("Sapporo", "Japan"),
    ("Hiroshima", "Japan"),
    ("Seoul", "South Korea"),
    ("Busan", "South Korea"),
    ("Pyongyang", "North Korea"),
    ("Hanoi", "Vietnam"),
    ("Ho Chi Minh City", "Vietnam"),
    ("Bangkok", "Thailand"),
    ("Chiang Mai", "Thailand"),
    ("Phuket", "Thailand"),
    ("Phnom Penh", "Cambodia"),
    ("Vientiane", "Laos"),
    ("Yangon", "Myanmar"),
    ("Kuala Lumpur", "Malaysia"),
    ("Jakarta", "Indonesia"),
    ("Manila", "the Philippines"),
    # Oceania
    ("Sydney", "Australia"),
    ("Melbourne", "Australia"),
    ("Brisbane", "Australia"),
    ("Adelaide", "Australia"),
    ("Canberra", "Australia"),
    ("Auckland", "New Zealand"),
    ("Wellington", "New Zealand"),
    ("Christchurch", "New Zealand"),
)


@dataclass(frozen=True, eq=False)
class CityFacts:
    """A labeled set of true and false statements about which country a city is in.

    Parameters
    ----------
    statements : list of str
        One statement per row.
    labels : numpy.ndarray
        Integer labels of shape ``(n_rows,)``: 1 for a true statement, 0 for a false one. Stored as a read-only
        ``int64`` array.
    cities : list of str
        The city each statement is about, one per row.

    Raises
    ------
    ValueError
        If the three fields do not have the same length or a label is not 0 or 1.

    See Also
    --------
    city_facts : Build the dataset from the built-in table.

    """

    statements: list[str]
    labels: np.ndarray
    cities: list[str]

    def __post_init__(self) -> None:
        """Validate the fields and normalise them to lists and a read-only ``int64`` array."""
        statements = [str(s) for s in self.statements]
        cities = [str(c) for c in self.cities]
        raw = np.asarray(self.labels)
        if raw.ndim != 1:
            raise ValueError(f"labels must be one-dimensional, got an array of shape {raw.shape}")
        if raw.size and not np.isin(raw, (0, 1)).all():
            raise ValueError("labels must contain only 0 (false) and 1 (true)")
        labels = raw.astype(np.int64, copy=True)
        labels.setflags(write=False)
        if not len(statements) == len(labels) == len(cities):
            raise ValueError(
                "statements, labels and cities must have the same length, "
                f"got {len(statements)}, {len(labels)} and {len(cities)}"
            )
        object.__setattr__(self, "statements", statements)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "cities", cities)

    def __len__(self) -> int:
        """Return the number of rows."""
        return len(self.statements)

    def __eq__(self, other: object) -> bool:
        """Return whether ``other`` is a ``CityFacts`` with identical rows in the same order."""
        if not isinstance(other, CityFacts):
            return NotImplemented
        return (
            self.statements == other.statements
            and self.cities == other.cities
            and np.array_equal(self.labels, other.labels)
        )

    @property
    def positives(self) -> list[str]:
        """The true statements (label 1), in row order."""
        return [s for s, y in zip(self.statements, self.labels, strict=True) if y == 1]

    @property
    def negatives(self) -> list[str]:
        """The false statements (label 0), in row order."""
        return [s for s, y in zip(self.statements, self.labels, strict=True) if y == 0]

    def _take(self, rows: np.ndarray) -> CityFacts:
        """Return a new dataset made of the given row indices, in the given order."""
        return CityFacts(
            statements=[self.statements[i] for i in rows],
            labels=self.labels[rows],
            cities=[self.cities[i] for i in rows],
        )

    def split(self, test_fraction: float = 0.25, *, seed: int = 0) -> tuple[CityFacts, CityFacts]:
        """Split into a train and a test set by city.

        All rows about a city land on the same side, so no city appears in both sets. The number of test cities is
        ``round(test_fraction * n_cities)``, kept between 1 and ``n_cities - 1`` so that neither side is empty.
        Rows keep their original relative order on each side.

        Parameters
        ----------
        test_fraction : float, default 0.25
            Fraction of the cities to put in the test set; must satisfy ``0 < test_fraction < 1``.
        seed : int, default 0
            Seed for :func:`numpy.random.default_rng` used to choose the test cities.

        Returns
        -------
        train, test : CityFacts
            The two parts.

        Raises
        ------
        ValueError
            If ``test_fraction`` is not strictly between 0 and 1, or the dataset has fewer than two cities.

        Examples
        --------
        >>> from fastprobe.datasets import city_facts
        >>> train, test = city_facts().split(0.25, seed=0)
        >>> set(train.cities).isdisjoint(test.cities)
        True

        """
        fraction = float(test_fraction)
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"test_fraction must be strictly between 0 and 1, got {test_fraction!r}")
        unique_cities = list(dict.fromkeys(self.cities))
        n_cities = len(unique_cities)
        if n_cities < 2:
            raise ValueError(f"cannot split a dataset with fewer than 2 distinct cities (it has {n_cities})")
        n_test = min(max(round(fraction * n_cities), 1), n_cities - 1)
        order = np.random.default_rng(seed).permutation(n_cities)
        test_cities = {unique_cities[i] for i in order[:n_test]}
        is_test = np.fromiter((c in test_cities for c in self.cities), dtype=bool, count=len(self))
        return self._take(np.flatnonzero(~is_test)), self._take(np.flatnonzero(is_test))


def city_facts(n: int | None = None, *, seed: int = 0) -> CityFacts:
    """Build a balanced dataset of true and false statements about where cities are.

    For every city of :data:`CITY_COUNTRIES` there is one true statement,
    ``"The city of {city} is in {country}."``, and one false statement naming another country of the table, drawn at
    random (never the city's own country). The rows are then shuffled. Everything is drawn from a single
    ``numpy.random.default_rng(seed)``, so the same seed always gives the same dataset.

    Parameters
    ----------
    n : int, optional
        Number of rows to keep. When given, the dataset keeps the first ``n - n // 2`` true and the first ``n // 2``
        false statements of the shuffled order (still in shuffled order), so the classes stay balanced. Must be
        between 2 and ``2 * len(CITY_COUNTRIES)``. By default all rows are returned.
    seed : int, default 0
        Seed for the choice of the false countries and for the shuffle.

    Returns
    -------
    CityFacts
        The statements, their labels (1 = true, 0 = false) and the city of each row.

    Raises
    ------
    ValueError
        If ``n`` is smaller than 2 or larger than the number of available rows.

    Examples
    --------
    >>> from fastprobe.datasets import CITY_COUNTRIES, city_facts
    >>> data = city_facts(seed=0)
    >>> len(data) == 2 * len(CITY_COUNTRIES)
    True
    >>> int(data.labels.sum()) == len(CITY_COUNTRIES)
    True
    >>> small = city_facts(10, seed=0)
    >>> len(small), int(small.labels.sum())
    (10, 5)
    >>> "The city of Paris is in France." in data.positives
    True

    """
    n_available = 2 * len(CITY_COUNTRIES)
    if n is not None:
        n = operator.index(n)
        if n < 2 or n > n_available:
            raise ValueError(f"n must be between 2 and {n_available} (the maximum number of rows available), got {n}")

    rng = np.random.default_rng(seed)
    countries = sorted({country for _, country in CITY_COUNTRIES})
    country_index = {country: i for i, country in enumerate(countries)}
    true_idx = np.array([country_index[country] for _, country in CITY_COUNTRIES], dtype=np.int64)
    # Draw uniformly among the other countries: draw from n_countries - 1 slots and skip over the true one.
    false_idx = rng.integers(0, len(countries) - 1, size=len(CITY_COUNTRIES))
    false_idx = false_idx + (false_idx >= true_idx)

    statements: list[str] = []
    labels: list[int] = []
    cities: list[str] = []
    for (city, country), wrong in zip(CITY_COUNTRIES, false_idx, strict=True):
        statements.append(STATEMENT_TEMPLATE.format(city=city, country=country))
        statements.append(STATEMENT_TEMPLATE.format(city=city, country=countries[wrong]))
        labels.extend((1, 0))
        cities.extend((city, city))

    order = rng.permutation(n_available)
    if n is not None:
        shuffled_labels = np.asarray(labels, dtype=np.int64)[order]
        keep = np.zeros(n_available, dtype=bool)
        keep[np.flatnonzero(shuffled_labels == 1)[: n - n // 2]] = True
        keep[np.flatnonzero(shuffled_labels == 0)[: n // 2]] = True
        order = order[keep]

    return CityFacts(
        statements=[statements[i] for i in order],
        labels=np.asarray(labels, dtype=np.int64)[order],
        cities=[cities[i] for i in order],
    )
